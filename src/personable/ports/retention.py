"""Retention's storage side: expire the events an expression selects, and old rows of a table."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import ibis.expr.types as ir


class RetentionStore(Protocol):
    def expire_events(self, message_ids: "ir.Table", mode: str, now: datetime,
                      dry_run: bool) -> tuple[int, list[str]]:
        """The events whose ids ``message_ids`` gives: anonymized (moved into events_minimized) or deleted,
        in one transaction; how many, and the profiles (event owners) they were of (none when ``dry_run``:
        then nothing is touched)."""
    def expire_rows(self, table: str, before: datetime, dry_run: bool) -> int:
        """Rows of quarantine, consent_refusals or events_minimized older than ``before``: deleted; how many."""
