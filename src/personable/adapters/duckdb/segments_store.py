"""Segments on DuckDB: definitions, live membership with its history, sizes
over time, computed traits, exports. Mixin for DuckDBStore.

Membership changes are applied as a diff between the members a rule selects
now and those recorded, so entering and leaving are explicit events with a time.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import orjson
import pyarrow as pa

from ...errors import ImportFailed, NotFound
from .parse_sql import q


class SegmentsStore:
    _write_lock: Any
    _writer: Any

    compile: Any

    def cursor(self) -> Any: ...
    def _transaction(self) -> Any: ...

    # -- definitions ---------------------------------------------------------------------
    def save_segment(self, segment_id: str, name: str, description: str, rule: dict, origin: str, now: datetime) -> None:
        with self._write_lock:
            self._writer.execute("""
                INSERT INTO segments (segment_id, name, description, rule, origin, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (segment_id) DO UPDATE SET name = excluded.name, description = excluded.description,
                    rule = excluded.rule, origin = excluded.origin, updated_at = excluded.updated_at
                WHERE segments.rule IS DISTINCT FROM excluded.rule OR segments.name IS DISTINCT FROM excluded.name
                   OR segments.description IS DISTINCT FROM excluded.description""",
                                 [segment_id, name, description, orjson.dumps(rule).decode(), origin, now, now])

    def api_segments(self) -> list[tuple[str, str, str, str, datetime]]:
        """(id, name, description, rule JSON, updated_at) of segments defined through the API: cheap, no counts."""
        return self.cursor().execute("""SELECT segment_id, name, description, rule, updated_at FROM segments
                                        WHERE origin = 'api' ORDER BY segment_id""").fetchall()

    def stored_segments(self) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT s.segment_id, s.name, s.description, s.rule, s.origin, s.created_at, s.updated_at, s.refreshed_at,
                   (SELECT count(*) FROM segment_members m WHERE m.segment_id = s.segment_id) AS size
            FROM segments s ORDER BY s.segment_id""").fetchall()
        keys = ("segment_id", "name", "description", "rule", "origin", "created_at", "updated_at", "refreshed_at", "size")
        out = []
        for r in rows:
            item = dict(zip(keys, r))
            item["rule"] = orjson.loads(item["rule"])
            for k in ("created_at", "updated_at", "refreshed_at"):
                item[k] = item[k].isoformat() if item[k] else None
            out.append(item)
        return out

    def delete_segment(self, segment_id: str, now: datetime) -> None:
        """Remove a segment; its members exit now (history is kept)."""
        with self._transaction() as con:
            con.execute("""UPDATE segment_history SET exited_at = ?, exited_by = 'deleted'
                           WHERE segment_id = ? AND exited_at IS NULL""", [now, segment_id])
            con.execute("DELETE FROM segment_members WHERE segment_id = ?", [segment_id])
            con.execute("DELETE FROM segments WHERE segment_id = ?", [segment_id])

    # -- membership ----------------------------------------------------------------------
    @contextmanager
    def realtime_session(self, profile_ids: pa.Table, now: datetime, event_names: list[str] | None = None,
                         event_types: list[str] | None = None) -> Iterator["RealtimeSession"]:
        """One transaction for re-judging every segment for a batch's profiles:
        copies of their profiles, traits, computed traits and events (``_rt_*``,
        one scan of the events however many segments there are) and the time
        (``_rt_clock``), queries over them, and the membership changes."""
        with self._transaction() as con:
            ids = profile_ids.column("profile_id").to_pylist()
            among = _Among(con, ids)
            for name, source in (("_rt_profiles", "profiles"), ("_rt_traits", "trait_values"),
                                 ("_rt_computed", "computed_values")):
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {source} "
                            f"WHERE {among.where('profile_id')}", among.params)
            # Events stored under profiles since merged into these count for them too.
            merged = [r[0] for r in con.execute(
                f"SELECT from_profile FROM profile_redirects WHERE {among.where('to_profile')}",
                among.params).fetchall()]
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
                        {"names": list(event_names or []), "types": list(event_types or [])})
            con.execute("DROP TABLE _rt_raw")
            with_merged.drop()
            con.execute("CREATE OR REPLACE TEMP TABLE _rt_clock AS SELECT ?::TIMESTAMPTZ AS now", [now])
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _rt_members AS SELECT segment_id, profile_id
                            FROM segment_members WHERE {among.where('profile_id')}""", among.params)
            among.drop()
            session = RealtimeSession(con, now, self.compile)
            yield session
            session.write()

    def refresh_membership(self, segment_id: str, members: Any, now: datetime,
                           cause: str) -> tuple[list[str], list[str], int]:
        """Make the segment's members what the expression ``members`` selects now.
        Judged and applied in one transaction: a list judged outside it could be
        older than realtime verdicts committed meanwhile, and would undo them.
        Returns (entered, exited, size)."""
        with self._transaction() as con:
            selected = con.sql(self.compile(members)).to_arrow_table()
            entered, exited = self._apply_membership(con, segment_id, selected, now, cause, None)
            return entered, exited, selected.num_rows

    @staticmethod
    def _apply_membership(con: Any, segment_id: str, members: pa.Table, now: datetime, cause: str,
                          among: pa.Table | None) -> tuple[list[str], list[str]]:
        scope = "AND profile_id IN (SELECT profile_id FROM _seg_among)" if among is not None else ""
        con.register("_seg_new", members.select(["profile_id"]))
        if among is not None:
            con.register("_seg_among", among.select(["profile_id"]))
        entered = [r[0] for r in con.execute("""
            SELECT DISTINCT profile_id FROM _seg_new
            WHERE profile_id NOT IN (SELECT profile_id FROM segment_members WHERE segment_id = ?)""",
                                              [segment_id]).fetchall()]
        exited = [r[0] for r in con.execute(f"""
            SELECT profile_id FROM segment_members WHERE segment_id = ? {scope}
            AND profile_id NOT IN (SELECT profile_id FROM _seg_new)""", [segment_id]).fetchall()]
        if entered:
            con.register("_seg_in", pa.table({"profile_id": pa.array(entered, pa.string())}))
            con.execute("INSERT INTO segment_members SELECT ?, profile_id, ? FROM _seg_in", [segment_id, now])
            con.execute("""INSERT INTO segment_history (segment_id, profile_id, entered_at, entered_by)
                           SELECT ?, profile_id, ?, ? FROM _seg_in""", [segment_id, now, cause])
            con.unregister("_seg_in")
        if exited:
            con.register("_seg_out", pa.table({"profile_id": pa.array(exited, pa.string())}))
            con.execute("""DELETE FROM segment_members WHERE segment_id = ?
                           AND profile_id IN (SELECT profile_id FROM _seg_out)""", [segment_id])
            con.execute("""UPDATE segment_history SET exited_at = ?, exited_by = ?
                           WHERE segment_id = ? AND exited_at IS NULL
                             AND profile_id IN (SELECT profile_id FROM _seg_out)""", [now, cause, segment_id])
            con.unregister("_seg_out")
        if among is None or entered or exited:
            size = con.execute("SELECT count(*) FROM segment_members WHERE segment_id = ?",
                               [segment_id]).fetchall()[0][0]
            con.execute("INSERT INTO segment_sizes VALUES (?, ?, ?, ?, ?, ?)",
                        [segment_id, now, size, len(entered), len(exited), cause])
        if among is None:
            con.execute("UPDATE segments SET refreshed_at = ? WHERE segment_id = ?", [now, segment_id])
        con.unregister("_seg_new")
        if among is not None:
            con.unregister("_seg_among")
        return entered, exited

    def segment_sizes(self, segment_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT measured_at, size, entered, exited, cause FROM segment_sizes WHERE segment_id = ?
            ORDER BY measured_at DESC, rowid DESC LIMIT ?""", [segment_id, limit]).fetchall()
        return [{"at": at.isoformat(), "size": size, "entered": e, "exited": x, "cause": c} for at, size, e, x, c in rows[::-1]]

    def segment_members(self, segment_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT profile_id, entered_at FROM segment_members WHERE segment_id = ?
            ORDER BY entered_at, profile_id LIMIT ? OFFSET ?""", [segment_id, limit, offset]).fetchall()
        return [{"profile_id": p, "entered_at": at.isoformat()} for p, at in rows]

    def computed_history(self, profile_id: str, key: str | None = None) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT key, value, since, until FROM computed_history WHERE profile_id = $p AND ($k IS NULL OR key = $k)
            ORDER BY key, since""", {"p": profile_id, "k": key}).fetchall()
        return [{"key": k, "value": orjson.loads(v) if v else None, "since": s.isoformat(),
                 "until": u.isoformat() if u else None} for k, v, s, u in rows]

    def computed_distribution(self, key: str) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""SELECT value ->> '$' AS v, count(*) FROM computed_traits WHERE key = ?
                                        GROUP BY ALL ORDER BY 2 DESC""", [key]).fetchall()
        return [{"value": v, "profiles": n} for v, n in rows]

    def membership_history(self, profile_id: str | None = None, segment_id: str | None = None,
                           limit: int = 200) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT segment_id, profile_id, entered_at, exited_at, entered_by, exited_by FROM segment_history
            WHERE ($p IS NULL OR profile_id = $p) AND ($s IS NULL OR segment_id = $s)
            ORDER BY entered_at DESC, segment_id LIMIT $limit""", {"p": profile_id, "s": segment_id, "limit": limit}).fetchall()
        keys = ("segment_id", "profile_id", "entered_at", "exited_at", "entered_by", "exited_by")
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, r)} for r in rows]

    def export_members(self, segment_id: str, path: str | Path, fmt: str) -> int:
        """Members with their ids, computed basics and traits, to CSV or Parquet."""
        if fmt not in ("csv", "parquet"):
            raise ImportFailed(f"unknown export format {fmt!r}; use csv or parquet")
        if not self.cursor().execute("SELECT count(*) FROM segments WHERE segment_id = ?", [segment_id]).fetchall()[0][0]:
            raise NotFound(f"no segment {segment_id!r}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        sid = q(segment_id)
        self.cursor().execute(f"""
            COPY (
              SELECT m.profile_id, m.entered_at,
                     (SELECT string_agg(i.value, '|' ORDER BY i.value) FROM identities i
                      WHERE i.profile_id = m.profile_id AND i.kind = 'user_id') AS user_ids,
                     p.first_seen, p.last_seen, p.event_count, p.order_count, p.revenue,
                     (SELECT json_group_object(t.key, t.value) FROM profile_traits t WHERE t.profile_id = m.profile_id)::VARCHAR AS traits
              FROM segment_members m LEFT JOIN profiles p USING (profile_id)
              WHERE m.segment_id = {sid} ORDER BY m.entered_at, m.profile_id
            ) TO {q(str(path))} ({options})""")
        return self.cursor().execute("SELECT count(*) FROM segment_members WHERE segment_id = ?", [segment_id]).fetchall()[0][0]

    # -- computed traits -------------------------------------------------------------------
    def write_computed(self, keys: list[str], table: pa.Table, now: datetime,
                       history_keys: tuple[str, ...] = ()) -> list[str]:
        """Replace the computed traits ``keys`` for every profile with ``table``
        (profile_id + one column per key); for ``history_keys`` each change is
        recorded as a transition with its time. Returns the profiles that changed."""
        with self._transaction() as con:
            con.register("_computed_new", table)
            unpivot = " UNION ALL ".join(
                f"SELECT profile_id, {q(k)} AS key, to_json({_ident(k)}) AS value FROM _computed_new WHERE {_ident(k)} IS NOT NULL"
                for k in keys)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _computed_rows AS {unpivot}")
            names = ", ".join(q(k) for k in keys)
            changed = [r[0] for r in con.execute(f"""
                SELECT DISTINCT coalesce(n.profile_id, o.profile_id) FROM _computed_rows n
                FULL OUTER JOIN (SELECT * FROM computed_traits WHERE key IN ({names})) o USING (profile_id, key)
                WHERE n.value IS DISTINCT FROM o.value""").fetchall()]
            if history_keys:
                tracked = ", ".join(q(k) for k in history_keys)
                con.execute(f"""
                    CREATE OR REPLACE TEMP TABLE _computed_moves AS
                    SELECT coalesce(n.profile_id, o.profile_id) AS profile_id, coalesce(n.key, o.key) AS key,
                           n.value AS new_value
                    FROM (SELECT * FROM _computed_rows WHERE key IN ({tracked})) n
                    FULL OUTER JOIN (SELECT * FROM computed_traits WHERE key IN ({tracked})) o USING (profile_id, key)
                    WHERE n.value IS DISTINCT FROM o.value""")
                con.execute("""UPDATE computed_history SET until = ? FROM _computed_moves m
                               WHERE computed_history.profile_id = m.profile_id AND computed_history.key = m.key
                                 AND computed_history.until IS NULL""", [now])
                con.execute("""INSERT INTO computed_history SELECT profile_id, key, new_value, ?, NULL
                               FROM _computed_moves WHERE new_value IS NOT NULL""", [now])
            con.execute(f"DELETE FROM computed_traits WHERE key IN ({names})")
            con.execute("INSERT INTO computed_traits SELECT profile_id, key, value, ? FROM _computed_rows", [now])
            if changed:
                con.register("_computed_changed", pa.table({"profile_id": pa.array(changed, pa.string())}))
                con.execute("UPDATE profiles SET updated_at = ? WHERE profile_id IN (SELECT profile_id FROM _computed_changed)", [now])
                con.unregister("_computed_changed")
            con.unregister("_computed_new")
        return changed


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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RealtimeSession:
    """What ``SegmentsStore.realtime_session`` yields. Segments are judged in
    dependency order against ``_rt_members`` (the batch's profiles' current
    memberships, kept up to date as each segment is judged, so ``in_segment``
    sees the new state); the changes are written in bulk at the end."""

    def __init__(self, con: Any, now: datetime, compile: Any):
        self.con, self.now, self.compile = con, now, compile
        self.current: dict[str, set[str]] = {}
        for segment_id, profile_id in con.execute("SELECT segment_id, profile_id FROM _rt_members").fetchall():
            self.current.setdefault(segment_id, set()).add(profile_id)
        self.entered: list[tuple[str, str]] = []
        self.exited: list[tuple[str, str]] = []
        self.cause = "event"

    def run(self, expr: Any) -> pa.Table:
        return self.con.sql(self.compile(expr)).to_arrow_table()

    def apply(self, segment_id: str, members: pa.Table, cause: str) -> tuple[list[str], list[str]]:
        self.cause = cause
        now_in = set(members.column("profile_id").to_pylist())
        was_in = self.current.get(segment_id, set())
        entered, exited = sorted(now_in - was_in), sorted(was_in - now_in)
        if entered or exited:
            self.current[segment_id] = now_in
            pairs = pa.table({"segment_id": pa.array([segment_id] * (len(entered) + len(exited)), pa.string()),
                              "profile_id": pa.array(entered + exited, pa.string()),
                              "entering": pa.array([True] * len(entered) + [False] * len(exited))})
            self.con.register("_rt_change", pairs)
            self.con.execute("""DELETE FROM _rt_members WHERE (segment_id, profile_id) IN
                                (SELECT segment_id, profile_id FROM _rt_change WHERE NOT entering)""")
            self.con.execute("INSERT INTO _rt_members SELECT segment_id, profile_id FROM _rt_change WHERE entering")
            self.con.unregister("_rt_change")
            self.entered += [(segment_id, p) for p in entered]
            self.exited += [(segment_id, p) for p in exited]
        return entered, exited

    def write(self) -> None:
        """Every change of the batch into the membership tables, in a few statements."""
        if not self.entered and not self.exited:
            return
        con, now, cause = self.con, self.now, self.cause
        moves = pa.table({
            "segment_id": pa.array([s for s, _ in self.entered] + [s for s, _ in self.exited], pa.string()),
            "profile_id": pa.array([p for _, p in self.entered] + [p for _, p in self.exited], pa.string()),
            "entering": pa.array([True] * len(self.entered) + [False] * len(self.exited)),
        })
        con.register("_rt_moves", moves)
        con.execute("""DELETE FROM segment_members WHERE (segment_id, profile_id) IN
                       (SELECT segment_id, profile_id FROM _rt_moves WHERE NOT entering)""")
        con.execute("""UPDATE segment_history SET exited_at = ?, exited_by = ? FROM _rt_moves m
                       WHERE NOT m.entering AND segment_history.segment_id = m.segment_id
                         AND segment_history.profile_id = m.profile_id AND segment_history.exited_at IS NULL""",
                    [now, cause])
        con.execute("INSERT INTO segment_members SELECT segment_id, profile_id, ? FROM _rt_moves WHERE entering", [now])
        con.execute("""INSERT INTO segment_history (segment_id, profile_id, entered_at, entered_by)
                       SELECT segment_id, profile_id, ?, ? FROM _rt_moves WHERE entering""", [now, cause])
        con.execute("""INSERT INTO segment_sizes
                       SELECT m.segment_id, ?, (SELECT count(*) FROM segment_members s WHERE s.segment_id = m.segment_id),
                              count(*) FILTER (WHERE m.entering), count(*) FILTER (WHERE NOT m.entering), ?
                       FROM _rt_moves m GROUP BY m.segment_id""", [now, cause])
        con.unregister("_rt_moves")
