"""Standardizing field values: one clean form per real-world value.

Each standardizer takes the observed value (as text) and returns a
:class:`Standardized`: the clean value, or ``missing`` (a placeholder such as
"N/A" that means "no value"), or a ``problem`` when the value cannot be read.
They run on the few distinct values of a batch, not on every row (see
``personable.ingest.pipeline``), so clarity matters more than speed here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable

import phonenumbers

from ..identity.identifiers import normalize_email

KINDS = ("name", "email", "phone", "country", "date", "datetime", "currency", "text")

# Values that stand for "nothing was entered", in any field.
MISSING_MARKERS = frozenset({"", "n/a", "na", "n.a.", "none", "null", "nil", "-", "--", "?", "unknown", "undefined", "nan"})

DEFAULT_DATE_FORMATS = ("%d/%m/%Y", "%m-%d-%Y", "%Y/%m/%d", "%d.%m.%Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y")
_COUNTRY_ALIASES = {"uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
                    "usa": "US", "u.s.": "US", "u.s.a.": "US", "america": "US", "united states of america": "US",
                    "holland": "NL", "deutschland": "DE", "espana": "ES", "españa": "ES", "brasil": "BR"}
_CURRENCY_SYMBOLS = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "r$": "BRL", "chf": "CHF"}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Standardized:
    value: str | None
    problem: str | None = None

    @property
    def missing(self) -> bool:
        return self.value is None and self.problem is None


MISSING = Standardized(None)


def clean_text(value: str) -> str:
    """Unicode NFKC, whitespace runs collapsed to one space, trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()


_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "ten", "ter", "bin", "al"})


def _recase(word: str, first: bool) -> str:
    # Only words typed all in one case are re-cased: "McDonald" stays as written.
    if not (word.isupper() or word.islower()):
        return word
    if not first and word.lower() in _PARTICLES:
        return word.lower()
    return re.sub(r"[^\W\d_]+", lambda m: m.group(0).capitalize(), word.lower())


def _name(value: str, options: dict[str, Any]) -> Standardized:
    words = clean_text(value).split(" ")
    return Standardized(" ".join(_recase(w, i == 0) for i, w in enumerate(words)))


def _email(value: str, options: dict[str, Any]) -> Standardized:
    email = normalize_email(value)
    if email is None:
        return Standardized(None, f"is not a valid email address: {clean_text(value)[:60]!r}")
    return Standardized(email)


def _phone(value: str, options: dict[str, Any]) -> Standardized:
    region = options.get("region") or "US"
    try:
        parsed = phonenumbers.parse(clean_text(value), region)
    except phonenumbers.NumberParseException:
        return Standardized(None, f"is not a phone number: {value[:40]!r}")
    if not phonenumbers.is_valid_number(parsed):
        return Standardized(None, f"is not a valid phone number for region {region}: {value[:40]!r}")
    return Standardized(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """ISO 3166-1 alpha-2 for a code (alpha-2/alpha-3) or an English name."""
    import pycountry  # ~0.1 s to load its tables: only when a country is standardized

    text = clean_text(value)
    alias = _COUNTRY_ALIASES.get(text.lower())
    if alias:
        return alias
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return None


def _country(value: str, options: dict[str, Any]) -> Standardized:
    code = country_code(value)
    return Standardized(code) if code else Standardized(None, f"is not an ISO 3166 country: {value[:40]!r}")


def _parse_date(text: str, formats: tuple[str, ...]) -> datetime | None:
    iso = text.replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        parsed = None
        for fmt in formats:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _date(value: str, options: dict[str, Any]) -> Standardized:
    parsed = _parse_date(clean_text(value), tuple(options.get("formats") or DEFAULT_DATE_FORMATS))
    if parsed is None:
        return Standardized(None, f"is not a date in a known format: {value[:40]!r}")
    return Standardized(parsed.date().isoformat())


def _datetime(value: str, options: dict[str, Any]) -> Standardized:
    parsed = _parse_date(clean_text(value), tuple(options.get("formats") or DEFAULT_DATE_FORMATS))
    if parsed is None:
        return Standardized(None, f"is not a date-time in a known format: {value[:40]!r}")
    return Standardized(parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


@lru_cache(maxsize=1024)
def currency_code(value: str) -> str | None:
    """ISO 4217 alpha-3 for a code or a common symbol."""
    import pycountry

    text = clean_text(value)
    code = _CURRENCY_SYMBOLS.get(text.lower(), text.upper())
    found = pycountry.currencies.get(alpha_3=code) if len(code) == 3 else None
    return found.alpha_3 if found else None


def _currency(value: str, options: dict[str, Any]) -> Standardized:
    code = currency_code(value)
    return Standardized(code) if code else Standardized(None, f"is not an ISO 4217 currency: {value[:40]!r}")


def _text(value: str, options: dict[str, Any]) -> Standardized:
    return Standardized(clean_text(value))


STANDARDIZERS: dict[str, Callable[[str, dict[str, Any]], Standardized]] = {
    "name": _name, "email": _email, "phone": _phone, "country": _country, "date": _date,
    "datetime": _datetime, "currency": _currency, "text": _text,
}


def standardize(kind: str, value: object, options: dict[str, Any] | None = None) -> Standardized:
    """The standard form of one observed value (``value`` as stored: text, number, bool)."""
    if value is None:
        return MISSING
    text = value if isinstance(value, str) else (str(value).lower() if isinstance(value, bool) else str(value))
    if clean_text(text).lower() in MISSING_MARKERS:
        return MISSING
    return STANDARDIZERS[kind](text, options or {})
