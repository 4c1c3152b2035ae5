"""Re-keying the identity graph on any SQL store (``IdentityKeyStore``): every
stored digest rewrapped under the current key, in one transaction."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Callable

import orjson
import pyarrow as pa

from .session import SqlSession
from .store_base import SqlStoreBase

# The shapes of a stored digest: unkeyed SHA-256 (a store from before keys), or ``<key id>:<HMAC>``.
DIGEST = re.compile(r"^(?:[A-Za-z0-9_-]+:)?[0-9a-f]{64}$")
KEYED = (("identities", "kind", "value"), ("identity_conflicts", "kind", "value"))


class IdentityKeyStoreMixin(SqlStoreBase):
    def identity_key(self) -> tuple[str, bool] | None:
        rows = self._session().rows("SELECT key_id, online_done FROM identity_keys "
                                    "ORDER BY activated_at DESC, key_id DESC LIMIT 1")
        return (str(rows[0][0]), bool(rows[0][1])) if rows else None

    def online_rekeyed(self, key_id: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE identity_keys SET online_done = TRUE WHERE key_id = ?", [key_id])

    def rekey_identities(self, kinds: list[str], key_id: str, rewrap: Callable[[str], str], at: datetime,
                         then: Callable[[], None] | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._writing() as db:
            for table, kind, value in KEYED:
                rows = db.rows(f"SELECT DISTINCT {kind}, {value} FROM {table} WHERE {db.in_list(kind)} "
                               f"AND {value} NOT LIKE ?", [kinds, f"{key_id}:%"])
                old = [(str(k), str(v)) for k, v in rows if DIGEST.match(str(v))]
                counts[table] = len(old)
                if not old:
                    continue
                db.put("_rekey", pa.table({"kind": pa.array([k for k, _ in old], pa.string()),
                                           "old": pa.array([v for _, v in old], pa.string()),
                                           "new": pa.array([rewrap(v) for _, v in old], pa.string())}))
                # Deleted and written again (not updated in place): the value is part of the primary key.
                columns = _columns(db, table)
                select = ", ".join(f"n.new AS {c}" if c == value else f"t.{c}" for c in columns)
                match = f"t.{kind} = n.kind AND t.{value} = n.old"
                db.temp("_rekeyed", f"SELECT {select} FROM {table} t JOIN _rekey n ON {match}")
                db.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _rekey n WHERE {match})")
                db.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM _rekeyed")
            counts["identity_audit"] = _rekey_snapshots(db, kinds, key_id, rewrap)
            if not db.rows("SELECT 1 FROM identity_keys WHERE key_id = ?", [key_id]):
                db.execute("INSERT INTO identity_keys (key_id, activated_at, rekeyed) VALUES (?, ?, ?)",
                           [key_id, at, sum(counts.values())])
            if then is not None:
                then()
        return counts


def _columns(db: SqlSession, table: str) -> list[str]:
    rows = db.rows("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                   "AND table_name = ? ORDER BY ordinal_position", [table])
    return [str(r[0]) for r in rows]


def _rekey_snapshots(db: SqlSession, kinds: list[str], key_id: str, rewrap: Callable[[str], str]) -> int:
    """The identities a merge's snapshot holds (what an undo gives back), rewrapped too: an undo matches
    them against the identity graph by value."""
    changed = []
    for row_id, snapshot in db.rows("SELECT id, snapshot FROM identity_audit WHERE snapshot IS NOT NULL"):
        snap = snapshot if isinstance(snapshot, dict) else orjson.loads(snapshot) if snapshot else {}
        pairs = snap.get("identities") or []
        new = [[k, rewrap(v) if k in kinds and DIGEST.match(str(v)) and not str(v).startswith(f"{key_id}:") else v]
               for k, v in pairs]
        if new != pairs:
            changed.append((orjson.dumps({**snap, "identities": new}).decode(), row_id))
    if changed:
        db.executemany(f"UPDATE identity_audit SET snapshot = {db.json_param()} WHERE id = ?", changed)
    return len(changed)
