"""Erasure's storage side: the requests (resumable), a person's rows taken out
of every registered table in one transaction, and a scan of every column."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from ..identity.keyed import IdentityHasher
    from ..privacy.personal_data import PersonalTable


@dataclass
class Subject:
    """Everything that names one person in the store (or several people, erased together)."""

    profiles: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    anonymous: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    """``kind:value`` as the identity graph stores them (emails and phones hashed)."""
    contacts: list[str] = field(default_factory=list)
    """Their emails and phone numbers, as observed and as standardized: they name them alone."""
    values: list[str] = field(default_factory=list)
    """Their other personal trait values (names, addresses...): others may share them."""
    people: int = 0

    def ids(self) -> list[str]:
        return sorted({*self.profiles, *self.users, *self.anonymous})

    def needles(self) -> list[str]:
        """Everything of theirs that a scan looks for."""
        return sorted({*self.ids(), *self.contacts, *self.values})

    def as_dict(self) -> dict[str, Any]:
        return {"profiles": self.profiles, "users": self.users, "anonymous": self.anonymous,
                "identities": self.identities, "contacts": self.contacts, "values": self.values,
                "people": self.people}


@dataclass(frozen=True)
class TextPattern:
    """A regular expression that finds a person inside free text (``privacy/person_text.py``)."""

    regex: str
    lower: bool = False
    """Sought in the lowercased text (emails)."""
    whole: bool = False
    """For a column naming what an action was on (an audit target), not for JSON."""


class ErasureStore(Protocol):
    def table_columns(self) -> dict[str, list[str]]:
        """Every base table of the store, with its column names."""
    def open_erasure(self, erasure_id: str, at: datetime, requested_by: str, digest: str,
                     subject: str) -> None: ...
    def erasures(self, erasure_id: str | None = None, digest: str | None = None,
                 pending: bool = False) -> list[dict[str, Any]]:
        """Erasure requests, newest first: one, those of a subject digest, or those not finished."""
    def close_erasure(self, erasure_id: str, at: datetime, certificate: str, state: str) -> None:
        """The subject cleared, the certificate (so far) kept; ``state``: compacting (the store's file is
        still to be rewritten) or done."""
    def note_erasure(self, erasure_id: str, progress: str) -> None:
        """What an unfinished request has removed so far (JSON), kept until it is done."""
    def resolve(self, identifier: str, region: str = "US", hasher: "IdentityHasher | None" = None) -> str | None: ...
    def person(self, profile_ids: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """The profiles and every profile merged into them (at any depth), and their identities
        (kind, value) as the identity graph stores them."""
    def personal_values(self, profile_ids: list[str], keys: list[str]) -> list[str]:
        """The text values of these trait keys among the profiles' traits (observed and standardized)
        and their events' traits."""
    def erase_rows(self, subject: Subject, tables: "Mapping[str, PersonalTable]", patterns: list[TextPattern],
                   redaction: Callable[[dict[str, Any]], str], erasure_id: str | None = None) -> dict[str, int]:
        """In one transaction, every row of the subject in ``tables`` (their free text matched by
        ``patterns``): deleted, or (a table to redact) its text columns replaced by ``redaction(record)``;
        rows per table. With ``erasure_id``, the counts are added to that request's progress in the same
        transaction, so that a crash right after loses none of them."""
    def compact(self) -> bool:
        """Let go of what deleted rows leave behind where the backend can (an embedded file is rewritten);
        False: not now (an import is under way), try again later."""
    def scan(self, needles: list[str]) -> list[dict[str, Any]]:
        """Every text column of every table that holds any of ``needles``: table, column, rows, needles."""
