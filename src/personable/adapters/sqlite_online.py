"""The embedded OnlineStore: profile documents in SQLite, read in microseconds.

A materialized view of the offline store, kept current by the write path: after
each committed batch the documents of the touched profiles and their lookup
keys are written here. The offline store stays the truth. The view records
the ``updated_at`` watermark of what it has applied, so after a crash between
the two commits the engine rebuilds whatever is newer (see ``Engine``).

SQLite, not DuckDB, because this is row-at-a-time point lookups: a keyed read
here costs tens of microseconds, a DuckDB point query about a millisecond.

Readers never wait and never see half a write: the database is in WAL mode, so
each read sees the last committed transaction. A full replacement of the
recommendations is written into a staging table in short transactions (other
writers go on meanwhile) and swapped in by renaming, in one transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import orjson

from ..errors import StoreError
from ..processes import pid_alive
from ..identity.lookup import PROFILE, candidate_keys
from ..privacy.erasure_files import stands_alone

if TYPE_CHECKING:
    from ..identity.keyed import IdentityHasher

SCHEMA = """
CREATE TABLE IF NOT EXISTS lookup (key TEXT PRIMARY KEY, profile_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs (profile_id TEXT PRIMARY KEY, doc BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recommendations (profile_id TEXT PRIMARY KEY, payload BLOB NOT NULL) WITHOUT ROWID;
-- A removed profile's keys are found by profile id.
CREATE INDEX IF NOT EXISTS lookup_by_profile ON lookup (profile_id);
"""
RECS_TABLE = "(profile_id TEXT PRIMARY KEY, payload BLOB NOT NULL) WITHOUT ROWID"
STAGING = "recommendations_staging_"
CHUNK = 5000  # rows per staging transaction: short enough not to hold writers up


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


class SQLiteOnlineStore:
    capabilities = frozenset({"online", "materialized", "atomic_swap"})

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
            # 16 KB pages (a new file only; an existing one keeps its size): a
            # WITHOUT ROWID page keeps a row inline up to about an eighth of the
            # page, and a longer one spills into overflow pages of its own. With
            # full-context events documents average ~1.7 KB: 200k of them made an
            # 814 MB file at 8 KB pages, 430 MB at 16 KB, written in 4.2 s
            # instead of 6.5 s.
            con.execute("PRAGMA page_size=16384")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # a lost tail is rebuilt from the offline store
            # A deleted or replaced row is overwritten with zeros, not left in a free page: an erased
            # person (or a document's older version) is not in the file any more.
            con.execute("PRAGMA secure_delete=ON")
            self._local.con = con
        return con

    def resolve(self, identifier: str, region: str = "US", hasher: "IdentityHasher | None" = None) -> str | None:
        con = self._con()
        for kind, value in candidate_keys(identifier, region, hasher):
            row = con.execute("SELECT profile_id FROM lookup WHERE key = ?", (f"{kind}:{value}",)).fetchone()
            if row is None and kind == PROFILE:
                # A live profile's own id: its document (a merged-away id has a key).
                row = con.execute("SELECT profile_id FROM docs WHERE profile_id = ?", (value,)).fetchone()
            if row:
                return str(row[0])
        return None

    def profile(self, profile_id: str, recent_events: int = 20) -> dict[str, Any] | None:
        row = self._con().execute("SELECT doc FROM docs WHERE profile_id = ?", (profile_id,)).fetchone()
        if row is None:
            return None
        doc: dict[str, Any] = orjson.loads(row[0])
        doc["recent_events"] = doc["recent_events"][:recent_events]
        return doc

    def watermark(self) -> str | None:
        row = self._con().execute("SELECT value FROM meta WHERE name = 'watermark'").fetchone()
        return str(row[0]) if row else None

    def apply(self, docs: Iterable[tuple[str, str]], keys: Iterable[tuple[str, str]],
              removed: Iterable[str], watermark: str | None) -> None:
        """Write documents and lookup keys, drop merged-away profiles with the
        keys that still point at them, in one transaction."""
        gone = [(p,) for p in removed]
        # In key order: both tables are B-trees keyed by these, so sorted rows
        # land on neighbouring pages instead of all over the file (79k documents
        # into a fresh store: 3.5 s in arrival order, 1.1-1.5 s sorted).
        docs, keys = sorted(docs, key=itemgetter(0)), sorted(keys, key=itemgetter(0))
        # A profile written is live: a redirect of its own id (left by a merge
        # since undone) would send its id to another profile. Given keys follow.
        live = [(f"{PROFILE}:{pid}",) for pid, _ in docs]

        def write(con: sqlite3.Connection) -> None:
            con.executemany("DELETE FROM docs WHERE profile_id = ?", gone)
            con.executemany("DELETE FROM lookup WHERE profile_id = ?", gone)
            con.executemany("DELETE FROM lookup WHERE key = ?", live)
            con.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?)", docs)
            con.executemany("INSERT OR REPLACE INTO lookup VALUES (?, ?)", keys)
            if watermark is not None:
                con.execute("INSERT OR REPLACE INTO meta VALUES ('watermark', ?)", (watermark,))

        with self._write_lock:
            self._in_transaction(write)

    def put_recommendations(self, rows: Iterable[tuple[str, bytes]], replace_all: bool = False) -> None:
        """Precomputed recommendations per profile (one JSON payload each).

        ``replace_all``: ``rows`` become the whole set, swapped in atomically;
        ``rows`` may be a generator (a retrain hands over every profile in one
        call without holding them all)."""
        if not replace_all:
            rows = list(rows)
            with self._write_lock:
                self._in_transaction(lambda con: con.executemany(
                    "INSERT OR REPLACE INTO recommendations VALUES (?, ?)", rows))
            return
        # The process id in the name tells a crashed writer's leftovers from a
        # live writer's generation (SQLite is one machine's store).
        staging = f"{STAGING}{os.getpid()}_{uuid.uuid4().hex}"
        self._drop_abandoned_staging()
        con = self._con()
        with self._write_lock:
            con.execute(f"CREATE TABLE {staging} {RECS_TABLE}")
        try:
            for part in _batches(rows, CHUNK):
                with self._write_lock:
                    self._in_transaction(lambda c: c.executemany(f"INSERT OR REPLACE INTO {staging} VALUES (?, ?)", part))
            retired = staging.replace(STAGING, "recommendations_retired_")

            def swap(c: sqlite3.Connection) -> None:
                c.execute(f"ALTER TABLE recommendations RENAME TO {retired}")
                c.execute(f"ALTER TABLE {staging} RENAME TO recommendations")

            with self._write_lock:
                self._in_transaction(swap)
                # Freeing the old generation only holds up writers; readers
                # already read the new one.
                con.execute(f"DROP TABLE {retired}")
        finally:
            with self._write_lock:
                con.execute(f"DROP TABLE IF EXISTS {staging}")

    def _in_transaction(self, work: Any) -> None:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            work(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _drop_abandoned_staging(self) -> None:
        con = self._con()
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND "
            "(name LIKE 'recommendations\\_staging\\_%' ESCAPE '\\' OR name LIKE 'recommendations\\_retired\\_%' ESCAPE '\\')")]
        for name in names:
            pid = name.split("_")[2]
            if pid.isdigit() and not pid_alive(int(pid)):
                with self._write_lock:
                    con.execute(f"DROP TABLE IF EXISTS {name}")

    def forget(self, profile_ids: list[str]) -> int:
        gone = [(p,) for p in profile_ids]
        counted: list[int] = []

        def erase(con: sqlite3.Connection) -> None:
            counted.append(sum(con.execute("DELETE FROM docs WHERE profile_id = ?", g).rowcount for g in gone))
            for table in ("lookup", "recommendations"):
                con.executemany(f"DELETE FROM {table} WHERE profile_id = ?", gone)

        with self._write_lock:
            self._in_transaction(erase)
            # secure_delete zeroes what is freed from now on; a file written before it was set may keep old
            # copies of the documents in free pages: rewritten whole, once per erasure.
            self._con().execute("VACUUM")
        # The WAL still holds the pages as they were before: copied into the file and cut. A reader
        # holding an old snapshot keeps it for a moment; a few tries outlast it.
        for _ in range(50):
            busy = self._con().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return counted[0]
            time.sleep(0.1)
        raise StoreError(f"{self.path}: its write-ahead log still holds erased documents (a reader keeps it "
                         "open); the erasure stays pending: run `personable privacy erase --resume` again")

    def prune_keys(self, kinds: list[str], key_id: str) -> int:
        def prune(con: sqlite3.Connection) -> None:
            for kind in kinds:
                counted.append(con.execute(
                    "DELETE FROM lookup WHERE substr(key, 1, ?) = ? AND substr(key, 1, ?) <> ?",
                    (len(kind) + 1, f"{kind}:", len(kind) + len(key_id) + 2, f"{kind}:{key_id}:")).rowcount)

        counted: list[int] = []
        with self._write_lock:
            self._in_transaction(prune)
        return sum(counted)

    def scan(self, needles: list[str]) -> list[dict[str, Any]]:
        con = self._con()
        found = []
        for table, columns in (("docs", ("profile_id", "doc")), ("lookup", ("key", "profile_id")),
                               ("recommendations", ("profile_id", "payload"))):
            for column in columns:
                which = [n for n in needles if any(stands_alone(n, bytes(r[0]).decode("utf-8", "replace")) for r in con.execute(
                    f"SELECT CAST({column} AS BLOB) FROM {table} WHERE instr(CAST({column} AS BLOB), ?) > 0",
                    (n.encode(),)))]
                if which:
                    found.append({"where": f"online sqlite {table}", "column": column, "values": which})
        return found

    def recommendations(self, profile_id: str) -> bytes | None:
        row = self._con().execute("SELECT payload FROM recommendations WHERE profile_id = ?", (profile_id,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
