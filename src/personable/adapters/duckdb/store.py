"""DuckDBStore: the embedded OfflineStore and OnlineStore.

One process owns the DuckDB file (DuckDB allows one writer process). Within it,
every thread works on its own cursor; the write path holds a lock so batches
commit one at a time. ``personable serve`` and the CLI share a project by having
the CLI talk to the running server instead of opening the file (see
``personable.engine``).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
import uuid
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pyarrow as pa

from ...errors import ImportFailed, StoreError
from ...ports import PipelineSettings, StagedInput
from ..sql.compiler import SqlCompiler
from .batch import DuckDBBatch, ParseStatements
from .parse_sql import q
from .files import lines_select
from ..sql.catalog_store import CatalogStore
from ..sql.computed_store import ComputedStore
from ..sql.audit_store import AuditStoreMixin
from ..sql.retention_store import RetentionStoreMixin
from ..sql.erasure_store import ErasureStoreMixin
from ..sql.identity_keys_store import IdentityKeyStoreMixin
from ..sql.consent_store import ConsentStoreMixin
from ..sql.models_store import ModelsStore
from ..sql.quality_jobs import QualityJobs
from ..sql.resolution_store import ResolutionStore
from ..sql.session import SqlSession
from .reads import ProfileReads
from .segments_store import DuckDBSegments
from .session import DuckDBSession
from .gate import Gate
from .schema import current_version, migrate

SWAP_TOKEN = "_compaction_token"


class DuckDBStore(ProfileReads, QualityJobs, ResolutionStore, DuckDBSegments, ComputedStore, ModelsStore,
                  CatalogStore, ConsentStoreMixin, AuditStoreMixin,
                  RetentionStoreMixin, ErasureStoreMixin, IdentityKeyStoreMixin):
    capabilities = frozenset({"offline", "online", "transactions", "bulk_file_read", "threads", "segments",
                              "computed_traits", "models", "resolution", "quality_jobs", "catalog", "consent",
                              "audit", "erasure", "identity_keys"})

    def __init__(self, path: str | Path | None):
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._root = self._connect()
        self._write_lock = threading.Lock()
        # Every cursor handed out, so that a compaction can close them all (and the file with them);
        # a thread whose cursor is of an older generation gets a new one.
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._generation = 0
        self._gate = Gate()
        self._threads: int | None = None
        self._imports_lock = threading.Lock()   # imports under way share one raised checkpoint threshold
        self._imports = 0
        self._threshold = ""
        self._local = threading.local()
        migrate(self._root)
        # Only this process migrates the file it owns, so the version is fixed from here on.
        self._schema_version = current_version(self._root)
        # One connection for the write path, used under the write lock: batches
        # on the request path do not pay for opening and configuring a new one.
        self._writer = self._root.cursor()
        self._writer.execute("SET TimeZone = 'UTC'")
        self.compile = SqlCompiler("duckdb")
        self._parse_statements = ParseStatements()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            root = duckdb.connect(self.path)
        except duckdb.IOException as exc:
            raise StoreError(
                f"cannot open {self.path}: {exc}. Another process (a running `personable serve`?) holds it; "
                "the CLI talks to a running server automatically when .personable/server.json points at it",
            ) from exc
        root.execute("SET TimeZone = 'UTC'")
        return root

    def set_threads(self, threads: int) -> None:
        """How many threads DuckDB may use (all connections of this process)."""
        self._threads = int(threads)
        self._root.execute(f"SET threads = {int(threads)}")

    @property
    def schema_version(self) -> int:
        return self._schema_version

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A per-thread connection to the same database (DuckDB cursors are not thread-safe)."""
        cur = getattr(self._local, "cur", None)
        if cur is None or getattr(self._local, "generation", -1) != self._generation:
            cur = self._root.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cur, self._local.generation = cur, self._generation
            self._cursors.append(cur)
        return cur

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writer connection in a transaction, under the write lock: writes
        commit one at a time, all or nothing."""
        with self._write_lock:
            con = self._writer
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _new_batch(self, con: duckdb.DuckDBPyConnection, staged: StagedInput, settings: PipelineSettings) -> DuckDBBatch:
        return DuckDBBatch(con, staged, settings, self.compile, self._parse_statements)

    # -- what the shared SQL mixins need (adapters/sql/store_base.py) -----------------
    def _session(self) -> SqlSession:
        return DuckDBSession(self.cursor, self._gate)

    @contextmanager
    def _reading(self, con: Any = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor (or ``con``, a write transaction's), for statements a compaction must not
        cut in on."""
        with self._gate.shared():
            yield con or self.cursor()

    @contextmanager
    def _writing(self) -> Iterator[SqlSession]:
        with self._transaction() as con:
            yield DuckDBSession(con)

    def _batch_on(self, db: SqlSession, staged: StagedInput, settings: PipelineSettings) -> DuckDBBatch:
        return self._new_batch(getattr(db, "con"), staged, settings)

    def compact(self) -> bool:
        """The file rewritten with only its live rows. DuckDB has no secure delete: a deleted row stays in
        the file's free blocks (and in the WAL) until they happen to be reused, so an erasure copies the
        database into a new file and swaps it in. Not while an import runs (False: try again later).

        Writers are held off by the write lock, statements by the gate (each waits for the swap, then
        runs on a new cursor). Should anything fail, the old file stays and is opened again."""
        if self.path == ":memory:":
            return True
        with self._imports_lock:
            if self._imports:
                return False
            with self._write_lock, self._gate.exclusive():
                self._writer.execute("CHECKPOINT")
                fresh, token = Path(self.path + ".compacting"), uuid.uuid4().hex
                for leftover in (fresh, Path(f"{fresh}.wal")):
                    leftover.unlink(missing_ok=True)
                self._copy_into(fresh, token)
                try:
                    self._close_all()
                    os.replace(fresh, self.path)
                    Path(self.path + ".wal").unlink(missing_ok=True)
                finally:
                    self._reopen()
                self._check_swapped(token)
        return True

    def _copy_into(self, fresh: Path, token: str) -> None:
        """The whole database copied into ``fresh``, with a token that proves, once reopened, that this
        process reads the new file (not a cached instance of the old one)."""
        name = self._root.execute("SELECT current_database()").fetchall()[0][0]
        self._root.execute(f"ATTACH {q(str(fresh))} AS _compacted")
        try:
            self._root.execute(f'COPY FROM DATABASE "{name}" TO _compacted')
            self._root.execute(f"CREATE TABLE _compacted.{SWAP_TOKEN} AS SELECT {q(token)} AS token")
        except BaseException:
            self._root.execute("DETACH _compacted")
            fresh.unlink(missing_ok=True)
            raise
        self._root.execute("DETACH _compacted")

    def _close_all(self) -> None:
        """Every connection closed: DuckDB keeps one instance per file and process, and lets go of the
        file only when its last connection closes."""
        for cur in [self._writer, *self._cursors, self._root]:
            try:
                cur.close()
            except duckdb.Error:
                pass
        self._cursors.clear()

    def _reopen(self) -> None:
        self._root = self._connect()
        if self._threads is not None:
            self._root.execute(f"SET threads = {self._threads}")
        self._writer = self._root.cursor()
        self._writer.execute("SET TimeZone = 'UTC'")
        self._generation += 1      # only now: a thread's next cursor comes from the new root

    def _check_swapped(self, token: str) -> None:
        try:
            found = self._writer.execute(f"SELECT token FROM {SWAP_TOKEN}").fetchall()
        except duckdb.Error:
            found = []
        if found != [(token,)]:
            raise StoreError(f"{self.path} was rewritten, but this process still reads the old file (a "
                             "connection to it survived); restart the process before writing to the store")
        self._writer.execute(f"DROP TABLE {SWAP_TOKEN}")
        self._writer.execute("CHECKPOINT")

    @contextmanager
    def batch(self, staged: StagedInput, settings: PipelineSettings) -> Iterator[DuckDBBatch]:
        with self._transaction() as con:
            b = self._new_batch(con, staged, settings)
            b.stage("lines")
            yield b

    @contextmanager
    def open_file(self, staged: StagedInput) -> Iterator["DuckDBFileImport"]:
        with self._import_running() as con:
            yield DuckDBFileImport(self, con, staged)

    @contextmanager
    def _import_running(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An import's own connection, counted among the imports under way before it exists (a compaction
        waits for none of them: it refuses while any runs, and an import waits for a compaction).

        One checkpoint for a whole import, at its end. DuckDB checkpoints
        whenever its WAL passes a threshold, and each checkpoint writes the
        indexes out whole: every second chunk of a 1M-event import paid ~2.5 s
        for it, more the bigger the store. The chunks stay durable (each commit
        is in the WAL); only a crash's WAL replay gets longer.

        The threshold is the database's, not the connection's: imports that
        overlap (two HTTP imports) raise it once and the last one to end puts
        it back and checkpoints."""
        with self._imports_lock:
            con = self._root.cursor()
            con.execute("SET TimeZone = 'UTC'")
            if self._imports == 0:
                self._threshold = str(con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0])
                con.execute("SET checkpoint_threshold = '1000 GiB'")
            self._imports += 1
        try:
            yield con
        finally:
            with self._imports_lock:
                self._imports -= 1
                last = self._imports == 0
                if last:
                    con.execute(f"SET checkpoint_threshold = {q(self._threshold)}")
            if last:
                with self._write_lock:
                    try:
                        con.execute("CHECKPOINT")
                    except duckdb.Error:
                        pass  # another connection's transaction holds it off: the threshold brings it later
            con.close()

    def add_quarantine(self, rows: list[dict[str, Any]]) -> None:
        """Records rejected before the write path (e.g. by the HTTP validator).

        One Arrow table, one INSERT: row by row cost ~3 ms per record on the
        request path (a 14,000-event batch of bad events took over a minute)."""
        if not rows:
            return
        problem = pa.struct([("path", pa.string()), ("problem", pa.string())])
        _quarantine_rows = pa.table({
            "received_at": pa.array([r["received_at"] for r in rows], pa.timestamp("us", tz="UTC")),
            "source": pa.array([r["source"] for r in rows], pa.string()),
            "origin": pa.array([r["origin"] for r in rows], pa.string()),
            "record_no": pa.array([r.get("record_no") for r in rows], pa.int64()),
            "message_id": pa.array([r.get("message_id") for r in rows], pa.string()),
            "problems": pa.array([[{"path": p["path"], "problem": p["problem"]} for p in r["problems"]] for r in rows],
                                 pa.list_(problem)),
            "raw": pa.array([r["raw"][:65536] for r in rows], pa.string()),
        })
        with self._reading() as cur:
            cur.execute("""INSERT INTO quarantine (received_at, source, origin, record_no, message_id, problems, raw)
                           SELECT received_at, source, origin, record_no, message_id, problems, raw
                           FROM _quarantine_rows""")

    def quarantine(self, limit: int = 50, offset: int = 0) -> pa.Table:
        with self._reading() as cur:
            return cur.sql("""SELECT id, received_at, source, origin, record_no, message_id, problems, raw
                              FROM quarantine ORDER BY id DESC LIMIT $limit OFFSET $offset""",
                           params={"limit": limit, "offset": offset}).to_arrow_table()

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Read-only analytics for notebooks: run a SELECT and get Arrow back.

        Read-only is enforced, not just documented: every statement is parsed
        by DuckDB first and anything but a query (SELECT, WITH, FROM, DESCRIBE,
        SHOW, SUMMARIZE, EXPLAIN of those) is refused before anything runs."""
        with self._reading() as cur:
            try:
                statements = cur.extract_statements(query)
            except duckdb.Error as exc:
                raise StoreError(f"query failed: {exc}", sql=query[:2000]) from exc
            for statement in statements:
                _check_read_only(cur, statement)
            try:
                return cur.sql(query, params=params or None).to_arrow_table()
            except duckdb.Error as exc:
                raise StoreError(f"query failed: {exc}", sql=query[:2000]) from exc

    # -- analytics: Ibis expressions compiled for DuckDB -------------------------
    def execute(self, expr: Any) -> pa.Table:
        """Execute an Ibis expression built over unbound tables named like ours."""
        sql = self.compile(expr)
        try:
            with self._reading() as cur:
                return cur.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"analytics query failed: {exc}", sql=sql[:2000]) from exc

    def quarantine_summary(self) -> list[dict[str, Any]]:
        """How many quarantined records name each field, with the most common problem."""
        with self._reading() as cur:
            rows = cur.execute("""
                SELECT p.path, count(*) AS records, mode(regexp_replace(p.problem, ', got .*$|: ''.*$', ''))
                FROM quarantine, unnest(problems) AS u(p) GROUP BY p.path ORDER BY count(*) DESC LIMIT 50""").fetchall()
        return [{"path": path, "records": n, "typical_problem": typical} for path, n, typical in rows]

    def close(self) -> None:
        try:
            self._root.close()
        except duckdb.Error:
            pass


def _check_read_only(cur: duckdb.DuckDBPyConnection, statement: Any) -> None:
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement: judge the statement inside.
        import re

        inner = re.sub(r"^\s*explain(\s+analy[sz]e)?\s+", "", statement.query, flags=re.IGNORECASE)
        if inner != statement.query:
            for s in cur.extract_statements(inner):
                _check_read_only(cur, s)
            return
    if kind != duckdb.StatementType.SELECT:
        from ...errors import ReadOnlyQuery

        word = str(kind).rsplit(".", 1)[-1]
        raise ReadOnlyQuery(f"sql() is read-only: {word} statements are refused (use the engine's own "
                            "methods to change data)")


class DuckDBFileImport:
    """Reads a whole file into a connection-local staging table in one bulk scan;
    chunks of it then go through the write path, each in its own transaction, so
    a long import shows progress and an interrupted one keeps what it committed."""

    def __init__(self, store: DuckDBStore, con: duckdb.DuckDBPyConnection, staged: StagedInput):
        self.store, self.con, self.staged = store, con, staged
        select = lines_select(con, staged.file or "", staged.file_format, staged.record_kind, staged.mapping,
                              staged.order_event)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _file_lines AS SELECT row_number() OVER () AS seq, line FROM ({select})")
        except duckdb.Error as exc:
            raise ImportFailed(f"cannot read {staged.file}: {exc}") from exc
        self.total = con.execute("SELECT count(*) FROM _file_lines").fetchall()[0][0]
        try:
            self.rejects = [(int(n), text) for n, text in con.execute(
                "SELECT line, csv_line FROM _rejects ORDER BY line").fetchall()]
        except duckdb.CatalogException:
            self.rejects = []

    @contextmanager
    def chunk(self, first: int, last: int, settings: PipelineSettings) -> Iterator[DuckDBBatch]:
        with self.store._write_lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                b = self.store._new_batch(self.con, self.staged, settings)
                b.stage("file", first, last)
                if first == 1:
                    b.quarantine_rejects(self.rejects)
                yield b
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
