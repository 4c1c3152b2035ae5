"""Erasure's storage side: the requests (resumable), a person's rows taken out
of every registered table in one transaction, and a scan of every column."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from ..privacy.personal_data import PersonalTable


@dataclass
class Subject:
    """Everything that names one person in the store (or several people, erased together)."""

    profiles: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    anonymous: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    """``kind:value`` as the identity graph stores them (emails and phones hashed)."""
    values: list[str] = field(default_factory=list)
    """Their personal trait values (emails, phones, names...), as observed and as standardized."""
    people: int = 0

    def ids(self) -> list[str]:
        return sorted({*self.profiles, *self.users, *self.anonymous})

    def needles(self) -> list[str]:
        """What may name the person inside free text."""
        return sorted({*self.ids(), *self.values})

    def as_dict(self) -> dict[str, Any]:
        return {"profiles": self.profiles, "users": self.users, "anonymous": self.anonymous,
                "identities": self.identities, "values": self.values, "people": self.people}


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
    def personal_values(self, profile_ids: list[str], keys: list[str]) -> list[str]:
        """The text values of these trait keys among the profiles' traits (observed and standardized)
        and their events' traits."""
    def erase_rows(self, subject: Subject, tables: "Mapping[str, PersonalTable]",
                   redaction: Callable[[dict[str, Any]], str]) -> dict[str, int]:
        """In one transaction, every row of the subject in ``tables``: deleted, or (a table to redact)
        its text columns replaced by ``redaction(record)``; rows per table."""
    def compact(self) -> bool:
        """Let go of what deleted rows leave behind where the backend can (an embedded file is rewritten);
        False: not now (an import is under way), try again later."""
    def scan(self, needles: list[str]) -> list[dict[str, Any]]:
        """Every text column of every table that holds any of ``needles``: table, column, rows, needles."""
