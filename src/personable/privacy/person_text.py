"""How a person is recognized inside free text: a quarantined raw record, an
audit record's target and details, a row of an export.

Only by what names them alone. Their profile ids, emails and phone numbers
are theirs wherever they stand as a JSON string. A userId or anonymousId is
theirs only under a key that holds one (``"userId": "10"``): as a bare
string, ``"10"`` is as likely a quantity or another table's id. Names,
addresses and birth dates are never used: people share them, and a row they
alone appear in cannot be told to be this person's. An audit target (a path
parameter, ``kind:value``) is matched as a whole.

Every pattern is written once, in the subset of regular expressions that
RE2 (DuckDB), PostgreSQL and Python read alike, so the store's SQL and the
rewrite of export files find the same rows.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from ..ports.erasure import Subject, TextPattern

ALTERNATIVES = 200        # needles per pattern: long alternations stay cheap to compile
ID_KEYS = ("userId", "user_id", "anonymousId", "anonymous_id", "previousId", "previous_id", "distinct_id",
           "identifier", "profile_id", "profileId")
TARGET_KINDS = ("profile", "user_id", "anonymous_id", "email", "phone")
# Export columns whose cells are ids or contacts (``|``-joined lists too).
PERSON_CELLS = frozenset({"profile_id", "user_id", "user_ids", "anonymous_id", "anonymous_ids", "email", "phone"})


def escape(text: str) -> str:
    """``text`` as a literal in a regular expression that RE2, PostgreSQL and Python all read."""
    return "".join("\\" + ch if ch in "\\.^$|?*+()[]{}-/" else ch for ch in text)


def _json_forms(values: Iterable[str]) -> list[str]:
    """Each value as it appears inside a JSON string: written raw, and with non-ASCII escaped."""
    forms = {json.dumps(v, ensure_ascii=a)[1:-1] for v in values for a in (False, True)}
    return sorted(forms)


def alternations(items: list[str]) -> list[str]:
    """``items`` as escaped alternations (``a|b|c``), a bounded number per pattern."""
    return ["|".join(escape(x) for x in items[i:i + ALTERNATIVES]) for i in range(0, len(items), ALTERNATIVES)]


def _contacts(subject: Subject) -> tuple[list[str], list[str]]:
    """(emails lowercased, everything else) of the subject's contacts."""
    emails = sorted({c.lower() for c in subject.contacts if "@" in c})
    return emails, sorted(c for c in subject.contacts if "@" not in c)


def text_patterns(subject: Subject) -> list[TextPattern]:
    emails, phones = _contacts(subject)
    keyed = sorted({*subject.users, *subject.anonymous})
    out: list[TextPattern] = []
    for group in alternations(_json_forms([*subject.profiles, *phones])):
        out.append(TextPattern(f'"(?:{group})"'))
    for group in alternations(_json_forms(emails)):
        out.append(TextPattern(f'"(?:{group})"', lower=True))
    keys = "|".join(ID_KEYS)
    for group in alternations(_json_forms(keyed)):
        out.append(TextPattern(f'"(?:{keys})"\\s*:\\s*"?(?:{group})(?:"|\\s|,|\\}}|\\]|$)'))
    kinds = "|".join(TARGET_KINDS)
    for group, lower in [*((g, False) for g in alternations(sorted({*keyed, *subject.profiles, *phones}))), *((g, True) for g in alternations(emails))]:
        out.append(TextPattern(f"(?:^|,)(?:(?:{kinds}):)?(?:{group})(?:,|$)", lower=lower, whole=True))
    return out


class PersonText:
    """The same patterns, in Python: for files the project keeps (exports)."""

    def __init__(self, subject: Subject):
        self._json = [(re.compile(p.regex), p.lower) for p in text_patterns(subject) if not p.whole]
        emails, phones = _contacts(subject)
        self._cells = {*subject.profiles, *subject.users, *subject.anonymous, *phones}
        self._emails = set(emails)

    def in_json(self, text: str) -> bool:
        """Whether JSON text (a line, a cell holding an object) names the person."""
        lowered = text.lower() if any(lower for _, lower in self._json) else text
        return any(rx.search(lowered if lower else text) for rx, lower in self._json)

    def in_row(self, row: Mapping[str, Any]) -> bool:
        """Whether an export's row is the person's: an id or contact column naming them, or JSON naming them."""
        for column, value in row.items():
            if value is None:
                continue
            text = str(value)
            if column.lower() in PERSON_CELLS:
                parts = set(text.split("|"))
                if parts & self._cells or {p.lower() for p in parts} & self._emails:
                    return True
            elif text[:1] in "{[" and self.in_json(text):
                return True
        return False
