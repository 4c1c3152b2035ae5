"""Normalizing and hashing identifier traits (email, phone, external ids).

Identifier values are normalized first (so ``Ann@X.com `` and ``ann@x.com``
link) and then hashed with SHA-256, the convention of ad platforms' customer
matching, so the identity graph never holds a raw email or phone number.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import phonenumbers

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Local parts that never name one person (placeholders typed into forms).
JUNK_EMAIL_LOCAL = frozenset({"test", "noreply", "no-reply", "donotreply", "null", "none", "nobody", "unknown", "n/a", "na"})


def normalize_email(value: str) -> str | None:
    email = unicodedata.normalize("NFKC", value).strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_phone(value: str, region: str) -> str | None:
    """E.164 (``+14155550123``) or None when the number is not valid."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_external(value: str) -> str | None:
    text = unicodedata.normalize("NFKC", value).strip()
    return text or None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalize_identifier(kind: str, value: object, region: str, junk: frozenset[str]) -> str | None:
    """The normalized form of one identifier value, or None when unusable or junk."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    if text.strip().lower() in junk:
        return None
    if kind == "email":
        norm = normalize_email(text)
    elif kind == "phone":
        norm = normalize_phone(text, region)
    else:
        norm = normalize_external(text)
    if norm is None or norm.lower() in junk:
        return None
    if kind == "email" and norm.partition("@")[0] in JUNK_EMAIL_LOCAL:
        return None
    # A junk value can hide behind formatting: "000-000-0000" normalizes to digits.
    digits = re.sub(r"\D", "", norm)
    if kind == "phone" and digits and len(set(digits[-7:])) == 1:
        return None
    return norm
