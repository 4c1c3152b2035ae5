"""PostgresStore: the offline store on PostgreSQL (``postgresql://…``).

Unlike the embedded file, a database serves many processes: two ``personable
serve`` and the CLI may write to one project at once. Every write batch takes
a transaction-scoped advisory lock, so batches of all processes apply one at a
time -- stitching reads the identity graph and then extends it, and two
batches interleaving there could split one person in two. Reads never wait
for it. Each thread has its own connection (psycopg connections are not to be
shared by concurrent threads).

Every offline port is served: the write path and the segment, computed-trait,
model, resolution, quality and catalog stores are the shared SQL of
``adapters/sql/`` run on a ``PostgresSession``; what is PostgreSQL's own is
here and in ``batch.py``, ``session.py`` and ``schema.py``.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

import orjson
import pyarrow as pa

from ...errors import ImportFailed, ReadOnlyQuery, StoreError
from ...identity.lookup import PROFILE, candidate_keys
from ...ports import PipelineSettings, StagedInput
from ...profiles.document import RECENT_EVENTS, build_document
from ..sql.catalog_store import CatalogStore
from ..sql.compiler import SqlCompiler
from ..sql.computed_store import ComputedStore
from ..sql.audit_store import AuditStoreMixin
from ..sql.retention_store import RetentionStoreMixin
from ..sql.erasure_store import ErasureStoreMixin
from ..sql.identity_keys_store import IdentityKeyStoreMixin
from ..sql.consent_store import ConsentStoreMixin
from ..sql.models_store import ModelsStore
from ..sql.quality_jobs import QualityJobs
from ..sql.resolution_store import ResolutionStore
from ..sql.segments_store import SegmentsStore
from ..sql.session import SqlSession
from .batch import PostgresBatch
from .session import PostgresSession, copy_rows, json_as_text, pg_params
from .schema import current_version, migrate

if TYPE_CHECKING:
    from ...identity.keyed import IdentityHasher

WRITE_LOCK = 7_311_002  # pg_advisory_xact_lock key held by each write batch


def _connect(url: str) -> Any:
    import psycopg

    try:
        con = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {_safe(url)}: {exc}".strip()) from exc
    con.execute("SET TimeZone = 'UTC'")
    # Literals built by the shared SQL double their quotes; that is safe only with standard strings.
    con.execute("SET standard_conforming_strings = on")
    json_as_text(con)
    return con


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlparse

    u = urlparse(url)
    if u.password:
        return url.replace(f":{u.password}@", ":***@")
    return url


class PostgresStore(QualityJobs, ResolutionStore, SegmentsStore, ComputedStore, ModelsStore, CatalogStore,
                    ConsentStoreMixin, AuditStoreMixin,
                    RetentionStoreMixin, ErasureStoreMixin, IdentityKeyStoreMixin):
    capabilities = frozenset({"offline", "transactions", "concurrent_writers", "segments",
                              "computed_traits", "models", "resolution", "quality_jobs", "catalog", "consent",
                              "audit", "erasure", "identity_keys"})
    SIZE_ORDER = "measured_at DESC, id"   # ties: the order they were recorded in

    def _hold_ledger(self, db: SqlSession) -> None:
        db.execute("LOCK TABLE dp_budget_ledger IN EXCLUSIVE MODE")

    def _hold_audit(self, db: SqlSession) -> None:
        # Many processes may write one database: the chain's head is read and
        # extended by one of them at a time (readers are not blocked).
        db.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")

    def __init__(self, url: str):
        self.url = url
        self._root = _connect(url)
        migrate(self._root)
        self._schema_version = current_version(self._root)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._writer = _connect(url)
        self.compile = SqlCompiler("postgres", statements=True)   # the write path's statements
        self.query = SqlCompiler("postgres")                       # results to fetch
        self._all: list[Any] = [self._root, self._writer]

    @property
    def schema_version(self) -> int:
        return self._schema_version

    def cursor(self) -> Any:
        """This thread's connection (autocommit: each read sees the latest commit)."""
        con = getattr(self._local, "con", None)
        if con is None or con.closed:
            con = _connect(self.url)
            self._local.con = con
            self._all.append(con)
        return con

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """The writer connection in a transaction holding the write lock of
        every process on this database."""
        with self._write_lock:
            con = self._writer
            with con.transaction():
                con.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
                yield con

    # -- what the shared SQL mixins need (adapters/sql/store_base.py) -----------------
    def _session(self) -> SqlSession:
        return PostgresSession(self.cursor())

    @contextmanager
    def _writing(self) -> Iterator[SqlSession]:
        with self._transaction() as con:
            yield PostgresSession(con)

    def _batch_on(self, db: SqlSession, staged: StagedInput, settings: PipelineSettings) -> PostgresBatch:
        return PostgresBatch(getattr(db, "con"), staged, settings, self.compile)

    def quarantine_summary(self) -> list[dict[str, Any]]:
        """How many quarantined records name each field, with the most common problem."""
        rows = self.cursor().execute("""
            SELECT p ->> 'path' AS path, count(*) AS records,
                   mode() WITHIN GROUP (ORDER BY regexp_replace(p ->> 'problem', ', got .*$|: ''.*$', '')) AS typical
            FROM quarantine, jsonb_array_elements(problems) AS p GROUP BY 1 ORDER BY records DESC LIMIT 50""").fetchall()
        return [{"path": path, "records": n, "typical_problem": typical} for path, n, typical in rows]

    # -- the write path ---------------------------------------------------------
    @contextmanager
    def batch(self, staged: StagedInput, settings: PipelineSettings) -> Iterator[PostgresBatch]:
        with self._transaction() as con:
            b = PostgresBatch(con, staged, settings, self.compile)
            _monotonic_time(con, b)
            t = staged.lines
            lines = t.column("line").to_pylist() if t is not None else []
            # Lines replayed from the event log carry their own source and receive time.
            own = None
            if t is not None and ("source" in t.column_names or "received_at" in t.column_names):
                sources = t.column("source").to_pylist() if "source" in t.column_names else [None] * len(lines)
                times = t.column("received_at").to_pylist() if "received_at" in t.column_names else [None] * len(lines)
                own = list(zip(sources, times))
            b.stage_lines(enumerate(lines, start=1), own)
            yield b

    @contextmanager
    def open_file(self, staged: StagedInput) -> Iterator["PostgresFileImport"]:
        yield PostgresFileImport(self, staged)

    def add_quarantine(self, rows: list[dict[str, Any]]) -> None:
        """Records rejected before the write path, in one COPY."""
        if not rows:
            return
        con = self.cursor()
        with con.transaction(), con.cursor() as cur:
            copy_rows(cur, "quarantine", ["received_at", "source", "origin", "record_no", "message_id", "problems", "raw"],
                      ([r["received_at"], r["source"], r["origin"], r.get("record_no"), _text(r.get("message_id")),
                        orjson.dumps([{"path": _text(p["path"]), "problem": _text(p["problem"])}
                                      for p in r["problems"]]).decode(),
                        _text(r["raw"][:65536])] for r in rows))

    def quarantine(self, limit: int = 50, offset: int = 0) -> pa.Table:
        rows = self._dicts("""SELECT id, received_at, source, origin, record_no, message_id, problems, raw
                              FROM quarantine ORDER BY id DESC LIMIT %s OFFSET %s""", [limit, offset])
        for r in rows:
            r["problems"] = orjson.loads(r["problems"]) if r["problems"] else []
        problem = pa.struct([("path", pa.string()), ("problem", pa.string())])
        schema = pa.schema([("id", pa.int64()), ("received_at", pa.timestamp("us", tz="UTC")), ("source", pa.string()),
                            ("origin", pa.string()), ("record_no", pa.int64()), ("message_id", pa.string()),
                            ("problems", pa.list_(problem)), ("raw", pa.string())])
        return pa.Table.from_pylist(rows, schema=schema)

    # -- reads --------------------------------------------------------------------
    def _dicts(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self.cursor().execute(sql, params)
        cols = [d.name for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def execute(self, expr: Any) -> pa.Table:
        """Run an Ibis expression compiled for PostgreSQL; Arrow back, typed by the expression's schema."""
        sql = self.query(expr)
        import psycopg

        try:
            cur = self.cursor().execute(sql)
            rows = cur.fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"analytics query failed: {exc}", sql=sql[:2000]) from exc
        schema = expr.schema().to_pyarrow()
        names = [d.name for d in cur.description]
        # By name: Ibis compiles a filter of a whole table to SELECT *, which
        # returns the table's columns, not only those the expression declares.
        by_name: dict[str, list[Any]] = {n: list(c) for n, c in zip(names, zip(*rows))} if rows else \
            {n: [] for n in names}
        arrays = []
        for field in schema:
            values = by_name[field.name]
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                # JSON values arrive decoded; a string column holds their text.
                values = [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values]
            arrays.append(pa.array(values, field.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Read-only analytics for notebooks, in a READ ONLY transaction (the database refuses writes)."""
        import psycopg

        con = self.cursor()
        args: list[Any] | dict[str, Any] | None
        if isinstance(params, dict):   # $name, as DuckDB takes them
            text, args = re.sub(r"\$([A-Za-z_]\w*)", r"%(\1)s", query.replace("%", "%%")), params
        elif params:
            text, args = pg_params(query), list(params)
        else:
            text, args = query, None
        try:
            with con.transaction():
                con.execute("SET TRANSACTION READ ONLY")
                # The extended protocol runs one statement: "SELECT 1; COMMIT; DELETE ..." is refused.
                cur = con.execute(text, args, prepare=True)
                cols = [d.name for d in cur.description or []]
                rows = cur.fetchall() if cur.description else []
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise ReadOnlyQuery(f"sql() is read-only: {exc}".strip()) from exc
        except psycopg.Error as exc:
            raise StoreError(f"query failed: {exc}", sql=query[:2000]) from exc
        # By column: an empty answer keeps its columns (as DuckDB's does), it does not lose them.
        return pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})

    def profile_docs(self, profile_ids: list[str], con: Any = None) -> list[tuple[str, str]]:
        """(profile id, JSON document) for each of ``profile_ids`` that exists."""
        ids = sorted(set(profile_ids))
        if not ids:
            return []
        profiles = self._dicts("SELECT * FROM profiles WHERE profile_id = ANY(%s)", [ids])
        if not profiles:
            return []
        ids = [p["profile_id"] for p in profiles]
        by: dict[str, dict[str, list[Any]]] = {p: {} for p in ids}

        def group(name: str, sql: str, key: str = "profile_id") -> None:
            for row in self._dicts(sql, [ids]):
                by[row[key]].setdefault(name, []).append(row)

        group("traits", "SELECT * FROM profile_traits WHERE profile_id = ANY(%s) ORDER BY key")
        group("identities", """SELECT * FROM identities WHERE profile_id = ANY(%s)
                               ORDER BY first_seen NULLS LAST, kind, value""")
        group("consents", "SELECT * FROM profile_consents WHERE profile_id = ANY(%s) ORDER BY purpose")
        group("computed", "SELECT profile_id, key, value FROM computed_traits WHERE profile_id = ANY(%s) ORDER BY key")
        group("segments", "SELECT profile_id, segment_id, entered_at FROM segment_members WHERE profile_id = ANY(%s)")
        group("merged", "SELECT to_profile, from_profile FROM profile_redirects WHERE to_profile = ANY(%s)",
              key="to_profile")
        for row in self._dicts(f"""
                SELECT * FROM (
                    SELECT e.*, x.pid,
                           row_number() OVER (PARTITION BY x.pid ORDER BY e.timestamp DESC, e.message_id DESC) AS rn
                    FROM (SELECT u.p AS pid, u.p AS stored FROM unnest(%(ids)s::text[]) AS u(p)
                          UNION ALL SELECT to_profile, from_profile FROM profile_redirects
                                    WHERE to_profile = ANY(%(ids)s)) x
                    JOIN events e ON e.profile_id = x.stored) r
                WHERE rn <= {RECENT_EVENTS} ORDER BY pid, rn""", {"ids": ids}):
            by[row["pid"]].setdefault("recent", []).append(row)
        def decoded(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
            return [{**r, **{k: None if r[k] is None else orjson.loads(r[k]) for k in keys}} for r in rows]

        out = []
        for p in profiles:
            rows = by[p["profile_id"]]
            rows["traits"] = decoded(rows.get("traits", []), "value", "raw_value")
            rows["computed"] = decoded(rows.get("computed", []), "value")
            rows["recent"] = decoded(rows.get("recent", []), "properties")
            doc = build_document(
                p, rows["traits"], rows.get("identities", []), rows.get("consents", []),
                [(c["key"], c["value"]) for c in rows["computed"]],
                [(s["segment_id"], s["entered_at"]) for s in rows.get("segments", [])],
                [m["from_profile"] for m in rows.get("merged", [])], rows["recent"])
            out.append((p["profile_id"], orjson.dumps(doc).decode()))
        return out

    def lookup_keys(self, profile_ids: list[str], con: Any = None) -> list[tuple[str, str]]:
        ids = sorted(set(profile_ids))
        rows = self.cursor().execute(f"""
            SELECT kind || ':' || value, profile_id FROM identities WHERE profile_id = ANY(%(ids)s)
            UNION ALL SELECT '{PROFILE}:' || from_profile, to_profile FROM profile_redirects WHERE to_profile = ANY(%(ids)s)""",
            {"ids": ids}).fetchall()
        return [(k, p) for k, p in rows]

    def changed_since(self, watermark: str | None) -> tuple[list[str], datetime | None]:
        rows = self.cursor().execute(
            "SELECT profile_id, updated_at FROM profiles WHERE %(since)s::timestamptz IS NULL "
            "OR updated_at > %(since)s::timestamptz", {"since": watermark}).fetchall()
        return [r[0] for r in rows], max((r[1] for r in rows), default=None)

    def resolve(self, identifier: str, region: str = "US", hasher: "IdentityHasher | None" = None) -> str | None:
        con = self.cursor()
        for kind, value in candidate_keys(identifier, region, hasher):
            if kind == PROFILE:
                row = con.execute("""SELECT coalesce((SELECT to_profile FROM profile_redirects WHERE from_profile = %(id)s),
                                                     (SELECT profile_id FROM profiles WHERE profile_id = %(id)s))""",
                                  {"id": value}).fetchone()
            else:
                row = con.execute("SELECT profile_id FROM identities WHERE kind = %s AND value = %s", [kind, value]).fetchone()
            if row and row[0]:
                return str(row[0])
        return None

    def profile(self, profile_id: str, recent_events: int = 20) -> dict[str, Any] | None:
        docs = self.profile_docs([profile_id])
        if not docs:
            return None
        doc: dict[str, Any] = orjson.loads(docs[0][1])
        doc["recent_events"] = doc["recent_events"][:recent_events]
        return doc

    def close(self) -> None:
        for con in self._all:
            try:
                con.close()
            except Exception:  # closing is best effort: the server may be gone already
                pass


def _text(value: Any) -> Any:
    """Text PostgreSQL can hold: a NUL character becomes U+FFFD (a rejected
    record is kept for the quarantine, not refused by the database)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _monotonic_time(con: Any, batch: PostgresBatch) -> None:
    """The batch's time is never before a profile update already committed.

    Several processes write here: a batch whose time was taken before it got
    the write lock could stamp profiles earlier than one committed meanwhile,
    and a projection's watermark (``changed_since``) would then miss them."""
    row = con.execute("SELECT max(updated_at) FROM profiles").fetchone()
    if row and row[0] is not None and row[0] > batch.now:
        batch.now = row[0]


class PostgresFileImport:
    """A file read once (by the embedded DuckDB engine, used here only as a
    file reader: JSONL, CSV and Parquet with their mappings) into memory as
    lines; chunks of it then go through the write path, one transaction each."""

    def __init__(self, store: PostgresStore, staged: StagedInput):
        import duckdb

        from ..duckdb.files import lines_select

        self.store, self.staged = store, staged
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            select = lines_select(con, staged.file or "", staged.file_format, staged.record_kind, staged.mapping,
                                  staged.order_event)
            self.lines = con.sql(select).to_arrow_table().column("line").to_pylist()
            try:
                self.rejects = [(int(n), text) for n, text in con.execute(
                    "SELECT line, csv_line FROM _rejects ORDER BY line").fetchall()]
            except duckdb.CatalogException:
                self.rejects = []
        except duckdb.Error as exc:
            raise ImportFailed(f"cannot read {staged.file}: {exc}") from exc
        finally:
            con.close()
        self.total = len(self.lines)

    @contextmanager
    def chunk(self, first: int, last: int, settings: PipelineSettings) -> Iterator[PostgresBatch]:
        with self.store._transaction() as con:
            b = PostgresBatch(con, self.staged, settings, self.store.compile)
            _monotonic_time(con, b)
            b.stage_lines((seq, self.lines[seq - 1]) for seq in range(first, min(last, self.total) + 1))
            if first == 1:
                b.quarantine_rejects(self.rejects)
            yield b
