"""The write path's quality step: standard forms for a batch's distinct values.

Pure domain logic over small lists; the store moves values in and out (see
``adapters/duckdb/batch_quality.py``).
"""

from __future__ import annotations

from .config import QualityConfig
from .standardize import country_code, standardize


def standardize_values(values: list[tuple[str, str, str | None]], quality: QualityConfig,
                       default_region: str) -> list[tuple[str, str, str | None, str | None, str | None, str, bool]]:
    """(field, raw, hint) -> (field, raw, hint, value, problem, status, quarantine).

    ``hint`` is the record's value of the field's ``region_from`` (its country),
    which decides how a phone number written without a country code is read."""
    out: list[tuple[str, str, str | None, str | None, str | None, str, bool]] = []
    for name, raw, hint in values:
        spec = quality.field(name)
        if spec is None or spec.standardize is None:
            out.append((name, raw, hint, raw, None, "observed", False))
            continue
        options = dict(spec.options)
        if spec.standardize == "phone" and "region" not in options:
            options["region"] = (country_code(hint) if hint else None) or default_region
        result = standardize(spec.standardize, raw, options)
        if result.missing:
            out.append((name, raw, hint, None, None, "missing", False))
        elif result.problem:
            # flag: keep the observed value, marked invalid; quarantine: the record goes.
            out.append((name, raw, hint, raw, result.problem, "invalid", spec.on_invalid == "quarantine"))
        else:
            out.append((name, raw, hint, result.value, None, "standardized" if result.value != raw else "observed", False))
    return out
