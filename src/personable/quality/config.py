"""The ``quality:`` section of personable.yaml: per-field standardization,
validation rules and missing-value policies, and the reporting currency.

    quality:
      reporting_currency: USD
      currency_rates: {EUR: 1.08, GBP: 1.27}   # 1 unit of the currency in USD
      on_invalid: flag                        # the default: keep the record, flag the field; or quarantine
      fields:
        email: {standardize: email, rules: {unique: true}}
        phone: {standardize: phone, region_from: country}
        signup_date: {standardize: date, formats: ["%d/%m/%Y"], rules: {max: today}}
        plan: {rules: {allowed: [free, pro]}, missing: {constant: free}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorList
from .standardize import KINDS, currency_code

RULE_KINDS = ("type", "min", "max", "pattern", "allowed", "unique", "required", "freshness")
# Rules a single record can fail on ingest; the others describe the population
# (uniqueness, completeness, freshness) and live in the report.
RECORD_RULES = ("type", "min", "max", "pattern", "allowed")
VALUE_TYPES = ("string", "number", "integer", "boolean", "date")
MISSING_POLICIES = ("leave", "constant", "unknown", "median", "mode", "derive")
DERIVATIONS = ("country_from_phone", "copy")
ACTIONS = ("quarantine", "flag")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Rule:
    kind: str
    value: Any

    @property
    def name(self) -> str:
        return self.kind


@dataclass(frozen=True)
class MissingPolicy:
    kind: str = "leave"            # leave | constant | unknown | median | mode | derive
    constant: Any = None
    derive: str | None = None      # country_from_phone | copy
    source: str | None = None      # the related field to derive from


@dataclass(frozen=True)
class FieldSpec:
    name: str
    standardize: str | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    region_from: str | None = None
    rules: tuple[Rule, ...] = ()
    missing: MissingPolicy = MissingPolicy()
    # Flag by default: one unreadable trait (a birth date) must not throw away
    # the rest of the record's evidence (its email, name, consent).
    on_invalid: str = "flag"

    def rule(self, kind: str) -> Rule | None:
        return next((r for r in self.rules if r.kind == kind), None)


@dataclass(frozen=True)
class QualityConfig:
    fields: tuple[FieldSpec, ...] = ()
    reporting_currency: str = "USD"
    currency_rates: tuple[tuple[str, float], ...] = ()

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def rates(self) -> dict[str, float]:
        return {self.reporting_currency: 1.0, **dict(self.currency_rates)}


def duration_seconds(text: str) -> int | None:
    m = _DURATION.match(str(text).strip())
    return int(m.group(1)) * _SECONDS[m.group(2)] if m else None


def _rules(path: str, raw: Any, errors: ErrorList) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        errors.add(path, "must be a mapping of rule: value (type, min, max, pattern, allowed, unique, required, freshness)")
        return ()
    out = []
    for kind, value in raw.items():
        where = f"{path}.{kind}"
        if kind not in RULE_KINDS:
            errors.add(where, f"unknown rule; use one of {', '.join(RULE_KINDS)}")
        elif kind == "type" and value not in VALUE_TYPES:
            errors.add(where, f"must be one of {', '.join(VALUE_TYPES)}, got {value!r}")
        elif kind == "pattern":
            try:
                re.compile(str(value))
            except re.error as exc:
                errors.add(where, f"is not a valid regular expression: {exc}")
                continue
            out.append(Rule(kind, str(value)))
        elif kind == "allowed" and not isinstance(value, list):
            errors.add(where, "must be a list of allowed values")
        elif kind in ("unique", "required") and not isinstance(value, bool):
            errors.add(where, f"must be true or false, got {value!r}")
        elif kind == "freshness" and duration_seconds(value) is None:
            errors.add(where, f"must be a duration like 30d, 12h or 2w, got {value!r}")
        elif kind in ("min", "max") and not isinstance(value, (int, float, str)):
            errors.add(where, f"must be a number, a date (YYYY-MM-DD) or 'today', got {value!r}")
        else:
            out.append(Rule(kind, [str(v) for v in value] if kind == "allowed" else value))
    return tuple(r for r in out if not (r.kind in ("unique", "required") and r.value is False))


def _missing(path: str, raw: Any, errors: ErrorList) -> MissingPolicy:
    if raw is None:
        return MissingPolicy()
    if isinstance(raw, str):
        if raw not in ("leave", "unknown", "median", "mode"):
            errors.add(path, f"must be leave, unknown, median, mode, {{constant: value}} or {{derive: ..., from: field}}, got {raw!r}")
            return MissingPolicy()
        return MissingPolicy(kind=raw, constant="unknown" if raw == "unknown" else None)
    if isinstance(raw, dict) and "constant" in raw:
        return MissingPolicy(kind="constant", constant=raw["constant"])
    if isinstance(raw, dict) and "derive" in raw:
        how = raw["derive"]
        if how not in DERIVATIONS:
            errors.add(f"{path}.derive", f"must be one of {', '.join(DERIVATIONS)}, got {how!r}")
            return MissingPolicy()
        source = raw.get("from", "phone" if how == "country_from_phone" else None)
        if not isinstance(source, str):
            errors.add(f"{path}.from", "names the field to derive from")
            return MissingPolicy()
        return MissingPolicy(kind="derive", derive=how, source=source)
    errors.add(path, "must be leave, unknown, median, mode, {constant: value} or {derive: ..., from: field}")
    return MissingPolicy()


def parse_quality(raw: Any, errors: ErrorList) -> QualityConfig:
    if raw is None:
        return QualityConfig()
    if not isinstance(raw, dict):
        errors.add("quality", "must be a mapping")
        return QualityConfig()
    default_action = raw.get("on_invalid", "flag")
    if default_action not in ACTIONS:
        errors.add("quality.on_invalid", f"must be quarantine or flag, got {default_action!r}")
        default_action = "flag"
    reporting = str(raw.get("reporting_currency", "USD")).upper()
    if currency_code(reporting) != reporting:
        errors.add("quality.reporting_currency", f"is not an ISO 4217 currency code: {reporting!r}")
    rates: list[tuple[str, float]] = []
    for code, rate in (raw.get("currency_rates") or {}).items():
        where = f"quality.currency_rates.{code}"
        if currency_code(str(code)) != str(code).upper():
            errors.add(where, "is not an ISO 4217 currency code")
        elif not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
            errors.add(where, f"must be a positive number (1 {code} in {reporting}), got {rate!r}")
        else:
            rates.append((str(code).upper(), float(rate)))
    fields_raw = raw.get("fields") or {}
    if not isinstance(fields_raw, dict):
        errors.add("quality.fields", "must be a mapping of field name: settings")
        fields_raw = {}
    specs = []
    for name, spec in fields_raw.items():
        path = f"quality.fields.{name}"
        spec = spec or {}
        if not isinstance(spec, dict):
            errors.add(path, "must be a mapping (standardize, rules, missing, ...)")
            continue
        unknown = set(spec) - {"standardize", "formats", "region", "region_from", "rules", "missing", "on_invalid"}
        if unknown:
            errors.add(path, f"unknown setting(s) {', '.join(sorted(unknown))}")
        kind = spec.get("standardize")
        if kind is not None and kind not in KINDS:
            errors.add(f"{path}.standardize", f"must be one of {', '.join(KINDS)}, got {kind!r}")
            kind = None
        action = spec.get("on_invalid", default_action)
        if action not in ACTIONS:
            errors.add(f"{path}.on_invalid", f"must be quarantine or flag, got {action!r}")
            action = default_action
        options = {k: spec[k] for k in ("formats", "region") if k in spec}
        if "formats" in options and not (isinstance(options["formats"], list) and all(isinstance(f, str) for f in options["formats"])):
            errors.add(f"{path}.formats", "must be a list of strptime formats such as '%d/%m/%Y'")
            options.pop("formats")
        specs.append(FieldSpec(
            name=str(name), standardize=kind, options=options,
            region_from=spec.get("region_from") if isinstance(spec.get("region_from"), str) else None,
            rules=_rules(f"{path}.rules", spec.get("rules"), errors),
            missing=_missing(f"{path}.missing", spec.get("missing"), errors),
            on_invalid=action,
        ))
    return QualityConfig(fields=tuple(specs), reporting_currency=reporting, currency_rates=tuple(rates))
