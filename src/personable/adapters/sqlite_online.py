"""The embedded OnlineStore: profile documents in SQLite, read in microseconds.

A materialized view of the offline store, kept current by the write path: after
each committed batch the documents of the touched profiles and their lookup
keys are written here. The offline store stays the truth. The view records
the ``updated_at`` watermark of what it has applied, so after a crash between
the two commits the engine rebuilds whatever is newer (see ``Engine``).

SQLite, not DuckDB, because this is row-at-a-time point lookups: a keyed read
here costs tens of microseconds, a DuckDB point query about a millisecond.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

import orjson

from ..identity.lookup import candidate_keys

SCHEMA = """
CREATE TABLE IF NOT EXISTS lookup (key TEXT PRIMARY KEY, profile_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs (profile_id TEXT PRIMARY KEY, doc BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recommendations (profile_id TEXT PRIMARY KEY, payload BLOB NOT NULL) WITHOUT ROWID;
"""


class SQLiteOnlineStore:
    capabilities = frozenset({"online", "materialized"})

    def __init__(self, path: str | Path):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        con = self._con()
        con.executescript(SCHEMA)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # a lost tail is rebuilt from the offline store
            self._local.con = con
        return con

    def resolve(self, identifier: str, region: str = "US") -> str | None:
        con = self._con()
        for kind, value in candidate_keys(identifier, region):
            row = con.execute("SELECT profile_id FROM lookup WHERE key = ?", (f"{kind}:{value}",)).fetchone()
            if row:
                return row[0]
        return None

    def profile(self, profile_id: str, recent_events: int = 20) -> dict[str, Any] | None:
        row = self._con().execute("SELECT doc FROM docs WHERE profile_id = ?", (profile_id,)).fetchone()
        if row is None:
            return None
        doc = orjson.loads(row[0])
        doc["recent_events"] = doc["recent_events"][:recent_events]
        return doc

    def watermark(self) -> str | None:
        row = self._con().execute("SELECT value FROM meta WHERE name = 'watermark'").fetchone()
        return row[0] if row else None

    def apply(self, docs: Iterable[tuple[str, str]], keys: Iterable[tuple[str, str]],
              removed: Iterable[str], watermark: str | None) -> None:
        """Write documents and lookup keys, drop merged-away documents, in one transaction."""
        with self._write_lock:
            con = self._con()
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("DELETE FROM docs WHERE profile_id = ?", [(p,) for p in removed])
                con.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?)", docs)
                con.executemany("INSERT OR REPLACE INTO lookup VALUES (?, ?)", keys)
                if watermark is not None:
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('watermark', ?)", (watermark,))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def put_recommendations(self, rows: list[tuple[str, bytes]], replace_all: bool = False) -> None:
        """Precomputed recommendations per profile (one JSON payload each)."""
        with self._write_lock:
            con = self._con()
            con.execute("BEGIN IMMEDIATE")
            try:
                if replace_all:
                    con.execute("DELETE FROM recommendations")
                con.executemany("INSERT OR REPLACE INTO recommendations VALUES (?, ?)", rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def replace_recommendations(self, chunks: Iterable[list[tuple[str, bytes]]]) -> int:
        """Chunks into a staging table, then one transaction swaps it in."""
        written = 0
        with self._write_lock:
            con = self._con()
            con.execute("DROP TABLE IF EXISTS recommendations_next")
            con.execute("CREATE TABLE recommendations_next (profile_id TEXT PRIMARY KEY, payload BLOB NOT NULL) WITHOUT ROWID")
        for rows in chunks:
            with self._write_lock:
                self._con().executemany("INSERT OR REPLACE INTO recommendations_next VALUES (?, ?)", rows)
            written += len(rows)
        with self._write_lock:
            con = self._con()
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("DELETE FROM recommendations")
                con.execute("INSERT INTO recommendations SELECT * FROM recommendations_next")
                con.execute("DROP TABLE recommendations_next")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return written

    def recommendations(self, profile_id: str) -> bytes | None:
        row = self._con().execute("SELECT payload FROM recommendations WHERE profile_id = ?", (profile_id,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
