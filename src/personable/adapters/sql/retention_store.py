"""Retention on any SQL store (``RetentionStore``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .store_base import SqlStoreBase
from .write_batch import MINIMIZED_COLUMNS

if TYPE_CHECKING:
    import ibis.expr.types as ir

TIME_COLUMN = {"quarantine": "received_at", "consent_refusals": "refused_at", "events_minimized": "timestamp"}


class RetentionStoreMixin(SqlStoreBase):
    def expire_events(self, message_ids: "ir.Table", mode: str, now: datetime,
                      dry_run: bool) -> tuple[int, list[str]]:
        with self._writing() as db:
            db.temp("_expired", self.compile(message_ids))
            n = int(db.rows("SELECT count(*) FROM _expired")[0][0])
            if dry_run or not n:
                return n, []
            chosen = "message_id IN (SELECT message_id FROM _expired)"
            owners = [r[0] for r in db.rows(f"SELECT DISTINCT profile_id FROM events WHERE {chosen}")]
            if mode == "anonymize":
                cols = ", ".join(MINIMIZED_COLUMNS)
                db.execute(f"INSERT INTO events_minimized ({cols}, stored_at) "
                           f"SELECT {cols}, CAST(? AS TIMESTAMPTZ) FROM events WHERE {chosen}", [now])
            db.execute(f"DELETE FROM events WHERE {chosen}")
        return n, owners

    def expire_rows(self, table: str, before: datetime, dry_run: bool) -> int:
        column = TIME_COLUMN[table]      # a fixed set: never a name from outside
        with self._writing() as db:
            n = int(db.rows(f"SELECT count(*) FROM {table} WHERE {column} < ?", [before])[0][0])
            if n and not dry_run:
                db.execute(f"DELETE FROM {table} WHERE {column} < ?", [before])
        return n
