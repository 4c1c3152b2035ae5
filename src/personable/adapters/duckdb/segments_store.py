"""DuckDB's own parts of the segment store: the realtime copies, tuned for
DuckDB's indexes, and exports written by DuckDB itself. Everything else is
shared (``adapters/sql/segments_store.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from ..sql.segments_store import SegmentsStore
from ..sql.session import SqlSession
from .parse_sql import q


class DuckDBSegments(SegmentsStore):
    SIZE_ORDER = "measured_at DESC, rowid"   # ties: the order they were recorded in

    def _copy_for_realtime(self, db: SqlSession, ids: list[str], names: list[str], types: list[str]) -> None:
        con = getattr(db, "con")
        among = _Among(con, ids)
        for name, source in (("_rt_profiles", "profiles"), ("_rt_traits", "trait_values"),
                             ("_rt_computed", "computed_values")):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {source} "
                        f"WHERE {among.where('profile_id')}", among.params)
        # Events stored under profiles since merged into these count for them too.
        merged = [r[0] for r in con.execute(
            f"SELECT from_profile FROM profile_redirects WHERE {among.where('to_profile')}", among.params).fetchall()]
        with_merged = _Among(con, ids + merged, "_rt_ids_merged")
        # Two steps on purpose: any other condition in the lookup makes DuckDB scan
        # instead of using the index. Then only the columns rules read, and only
        # the kinds of events some rule counts.
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rt_raw AS
                        SELECT profile_id, type, event, timestamp, properties FROM events
                        WHERE {with_merged.where('profile_id')}""", with_merged.params)
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _rt_events AS
            SELECT coalesce(r.to_profile, e.profile_id) AS profile_id, e.type, e.event, e.timestamp, e.properties
            FROM _rt_raw e LEFT JOIN profile_redirects r ON r.from_profile = e.profile_id
            WHERE (e.type = 'track' AND list_contains($names, e.event)) OR list_contains($types, e.type)""",
                    {"names": names, "types": types})
        con.execute("DROP TABLE _rt_raw")
        with_merged.drop()
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rt_members AS SELECT segment_id, profile_id
                        FROM segment_members WHERE {among.where('profile_id')}""", among.params)
        among.drop()

    def _export(self, db: SqlSession, select: str, params: list[Any], path: Path, fmt: str) -> int:
        """DuckDB writes the file itself, without the rows passing through Python."""
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        with db.refused(select):
            getattr(db, "con").execute(f"COPY ({select}) TO {q(str(path))} ({options})", params)
        # The export is every member of the segment, so count those rather than run the query again.
        return int(db.rows("SELECT count(*) FROM segment_members WHERE segment_id = ?", params[:1])[0][0])


class _Among:
    """The filter "profile id among these" for copying a batch's rows.

    Few ids (an HTTP batch): a list parameter, which DuckDB looks up through
    the profile_id indexes instead of scanning the table (~4x on 10M events).
    Many (a file import's tens of thousands): one index lookup per id costs
    more than a hash join over the whole table (79k ids over 100k events: 1.0 s
    against 0.09 s), so the ids go into a temp table joined by hash."""

    INDEX_LOOKUPS_MAX = 2000

    def __init__(self, con: Any, ids: list[str], table: str = "_rt_ids"):
        self.con, self.table = con, table
        self.joined = len(ids) > self.INDEX_LOOKUPS_MAX
        self.params: dict[str, Any] = {}
        if self.joined:
            con.register("_rt_ids_arrow", pa.table({"profile_id": pa.array(ids, pa.string())}))
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT DISTINCT profile_id FROM _rt_ids_arrow")
            con.unregister("_rt_ids_arrow")
        else:
            self.params = {"ids": ids}

    def where(self, column: str) -> str:
        if self.joined:
            return f"{column} IN (SELECT profile_id FROM {self.table})"
        return f"list_contains($ids, {column})"

    def drop(self) -> None:
        if self.joined:
            self.con.execute(f"DROP TABLE {self.table}")
