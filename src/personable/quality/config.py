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
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from ..settings import Section, Text, one_of
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




# -- the schema of the section ------------------------------------------------------------
def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None
    return text


def _duration(text: str) -> str:
    if duration_seconds(text) is None:
        raise ValueError(f"must be a duration like 30d, 12h or 2w, got {text!r}")
    return text


def _currency(text: str) -> str:
    if currency_code(text) != text.upper():
        raise ValueError(f"is not an ISO 4217 currency code: {text!r}")
    return text.upper()


Currency = Annotated[str, AfterValidator(_currency)]
Action = Literal[ACTIONS]  # type: ignore[valid-type]
# A bound is a number, a date (YYYY-MM-DD) or 'today'.
Bound = one_of({"number": int | float, "text": str},
               lambda v: "number" if isinstance(v, (int, float)) and not isinstance(v, bool)
               else "text" if isinstance(v, str) else None,
               "must be a number, a date (YYYY-MM-DD) or 'today'")


class RulesSection(Section):
    """The rules a value must pass (type, min, max, pattern, allowed: per record;
    unique, required, freshness: over the population, in the quality report)."""

    type: Literal[VALUE_TYPES] | None = None  # type: ignore[valid-type]
    """The value must read as this type."""
    min: Bound | None = None  # type: ignore[valid-type]
    """At least this number or date ('today' for the day of the check)."""
    max: Bound | None = None  # type: ignore[valid-type]
    """At most this number or date ('today' for the day of the check)."""
    pattern: Annotated[str, AfterValidator(_regex)] | None = None
    """A regular expression the whole value must match."""
    allowed: list[Text] | None = None
    """The only values allowed."""
    unique: bool = False
    """No two profiles share a value (reported as duplicates)."""
    required: bool = False
    """Every profile has a value (reported as completeness)."""
    freshness: Annotated[str, AfterValidator(_duration)] | None = None
    """A value older than this (30d, 12h, 2w) is stale."""

    def rules(self) -> tuple[Rule, ...]:
        out = []
        for kind in RULE_KINDS:
            value = getattr(self, kind)
            if value is None or value is False:
                continue
            out.append(Rule(kind, list(value) if kind == "allowed" else value))
        return tuple(out)


class MissingConstant(Section):
    constant: Any
    """Fill a missing value with this value."""


class MissingDerived(Section):
    derive: Literal[DERIVATIONS]  # type: ignore[valid-type]
    """country_from_phone: the country of the phone number; copy: another field's value."""
    source: str | None = Field(None, alias="from")
    """The field to derive from (default: phone, for country_from_phone)."""

    @model_validator(mode="after")
    def _copy_names_its_source(self) -> "MissingDerived":
        if self.derive == "copy" and self.source is None:
            raise ValueError("derive: copy needs from: the field to copy")
        return self


Missing = one_of(
    {"policy": Literal["leave", "unknown", "median", "mode"], "constant": MissingConstant, "derive": MissingDerived},
    lambda v: ("policy" if isinstance(v, str) else "constant" if isinstance(v, (dict, MissingConstant)) and
               "constant" in _keys(v) else "derive" if isinstance(v, (dict, MissingDerived)) and "derive" in _keys(v)
               else None),
    "must be leave, unknown, median, mode, {constant: value} or {derive: ..., from: field}")


def _keys(value: Any) -> Any:
    return value if isinstance(value, dict) else type(value).model_fields


class FieldSection(Section):
    """How one trait is standardized, checked and filled in."""

    standardize: Literal[KINDS] | None = None  # type: ignore[valid-type]
    """How values are standardized on ingest (and by `personable quality clean`)."""
    formats: list[str] | None = None
    """strptime formats tried, in order, after ISO 8601 (for dates), e.g. '%d/%m/%Y'."""
    region: str | None = None
    """The region local phone numbers are read in (default: identity.default_region)."""
    region_from: str | None = None
    """The field holding each record's country, to read its local phone numbers."""
    rules: RulesSection = RulesSection()
    """Validation rules (docs/quality.md)."""
    missing: Missing = "leave"  # type: ignore[valid-type]
    """What fills a missing value (`personable quality impute`)."""
    on_invalid: Action | None = None
    """flag: keep the record, count the value invalid, or quarantine (default: quality.on_invalid)."""

    def to_spec(self, name: str, default_action: str) -> FieldSpec:
        options = {k: getattr(self, k) for k in ("formats", "region") if getattr(self, k) is not None}
        return FieldSpec(name=name, standardize=self.standardize, options=options, region_from=self.region_from,
                         rules=self.rules.rules(), missing=_policy(self.missing),
                         on_invalid=self.on_invalid or default_action)


def _policy(raw: Any) -> MissingPolicy:
    if isinstance(raw, MissingConstant):
        return MissingPolicy(kind="constant", constant=raw.constant)
    if isinstance(raw, MissingDerived):
        return MissingPolicy(kind="derive", derive=raw.derive,
                             source=raw.source or ("phone" if raw.derive == "country_from_phone" else None))
    return MissingPolicy(kind=raw, constant="unknown" if raw == "unknown" else None)


class QualitySection(Section):
    """Data quality: standardization, validation rules, missing values, currencies (docs/quality.md)."""

    reporting_currency: Currency = "USD"
    """Revenue is converted to this currency (ISO 4217)."""
    currency_rates: dict[Currency, Annotated[float, Field(gt=0)]] = {}
    """1 unit of each currency in the reporting currency."""
    on_invalid: Action = "flag"
    """What happens to a record breaking a rule: quarantine, or flag (kept, counted invalid)."""
    fields: dict[str, FieldSection | None] = {}
    """Per trait: standardize, formats, region, region_from, rules, missing, on_invalid."""

    def to_config(self) -> QualityConfig:
        return QualityConfig(
            fields=tuple((spec or FieldSection()).to_spec(str(name), self.on_invalid)
                         for name, spec in self.fields.items()),
            reporting_currency=self.reporting_currency, currency_rates=tuple(self.currency_rates.items()))
