"""Segments on any SQL store: definitions, live membership with its history,
sizes over time, exports, and the realtime session (``SegmentStore``).

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
from .session import SqlSession, text_list, text_param
from .store_base import SqlStoreBase

EXPORT_FORMATS = ("csv", "parquet")


class SegmentsStore(SqlStoreBase):
    SIZE_ORDER = "measured_at"   # a backend adds its insertion order to break ties

    # -- definitions ---------------------------------------------------------------------
    def save_segment(self, segment_id: str, name: str, description: str, rule: dict[str, Any], origin: str,
                     now: datetime) -> None:
        with self._writing() as db:
            db.execute(f"""
                INSERT INTO segments (segment_id, name, description, rule, origin, created_at, updated_at)
                VALUES (?, ?, ?, {db.json_param()}, ?, ?, ?)
                ON CONFLICT (segment_id) DO UPDATE SET name = excluded.name, description = excluded.description,
                    rule = excluded.rule, origin = excluded.origin, updated_at = excluded.updated_at
                WHERE CAST(segments.rule AS TEXT) IS DISTINCT FROM CAST(excluded.rule AS TEXT)
                   OR segments.name IS DISTINCT FROM excluded.name
                   OR segments.description IS DISTINCT FROM excluded.description""",
                       [segment_id, name, description, orjson.dumps(rule).decode(), origin, now, now])

    def api_segments(self) -> list[tuple[str, str, str, str, datetime]]:
        """(id, name, description, rule JSON, updated_at) of segments defined through the API: cheap, no counts."""
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self._session().rows(
            """SELECT segment_id, name, description, rule, updated_at FROM segments
               WHERE origin = 'api' ORDER BY segment_id""")]

    def stored_segments(self) -> list[dict[str, Any]]:
        rows = self._session().rows("""
            SELECT s.segment_id, s.name, s.description, s.rule, s.origin, s.created_at, s.updated_at, s.refreshed_at,
                   (SELECT count(*) FROM segment_members m WHERE m.segment_id = s.segment_id) AS size
            FROM segments s ORDER BY s.segment_id""")
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
        with self._writing() as db:
            db.execute("""UPDATE segment_history SET exited_at = ?, exited_by = 'deleted'
                          WHERE segment_id = ? AND exited_at IS NULL""", [now, segment_id])
            db.execute("DELETE FROM segment_members WHERE segment_id = ?", [segment_id])
            db.execute("DELETE FROM segments WHERE segment_id = ?", [segment_id])

    # -- membership ----------------------------------------------------------------------
    @contextmanager
    def realtime_session(self, profile_ids: pa.Table, now: datetime, event_names: list[str] | None = None,
                         event_types: list[str] | None = None) -> Iterator["RealtimeSession"]:
        """One transaction for re-judging every segment for a batch's profiles:
        copies of their profiles, traits, computed traits and events (``_rt_*``,
        one scan of the events however many segments there are) and the time
        (``_rt_clock``), queries over them, and the membership changes."""
        with self._writing() as db:
            self._copy_for_realtime(db, profile_ids.column("profile_id").to_pylist(), list(event_names or []),
                                    list(event_types or []))
            db.put("_rt_clock", pa.table({"now": pa.array([now], pa.timestamp("us", tz="UTC"))}))
            session = RealtimeSession(db, now, self.compile)
            yield session
            session.write()

    def _among(self, db: SqlSession, ids: list[str], table: str) -> "Among":
        """The filter "profile id among ``ids``" for the realtime copies (a backend
        may look the ids up through its indexes, or join a temp table of them)."""
        return Among(db, ids)

    def _copy_for_realtime(self, db: SqlSession, ids: list[str], names: list[str], types: list[str]) -> None:
        """``_rt_profiles``, ``_rt_traits``, ``_rt_computed``, ``_rt_members`` and
        ``_rt_events`` (only the kinds some rule counts) for the profiles ``ids``."""
        among = self._among(db, ids, "_rt_ids")
        for name, source in (("_rt_profiles", "profiles"), ("_rt_traits", "trait_values"),
                             ("_rt_computed", "computed_values"), ("_rt_members", "segment_members")):
            columns = "segment_id, profile_id" if name == "_rt_members" else "*"
            db.temp(name, f"SELECT {columns} FROM {source} WHERE {among.where('profile_id')}", among.params)
        # Events stored under profiles since merged into these count for them too.
        merged = [r[0] for r in db.rows(f"SELECT from_profile FROM profile_redirects WHERE {among.where('to_profile')}",
                                        among.params)]
        among.drop()
        with_merged = self._among(db, ids + merged, "_rt_ids_merged")
        # Two steps on purpose: any other condition in the lookup makes DuckDB scan
        # instead of using the index. Then only the columns rules read, and only
        # the kinds of events some rule counts.
        db.temp("_rt_raw", f"""SELECT profile_id, type, event, timestamp, properties FROM events
                               WHERE {with_merged.where('profile_id')}""", with_merged.params)
        with_merged.drop()
        db.temp("_rt_events", f"""
            SELECT coalesce(r.to_profile, e.profile_id) AS profile_id, e.type, e.event, e.timestamp, e.properties
            FROM _rt_raw e LEFT JOIN profile_redirects r ON r.from_profile = e.profile_id
            WHERE (e.type = 'track' AND {db.in_list('e.event', text_list(names))})
               OR {db.in_list('e.type', text_list(types))}""")
        db.execute("DROP TABLE _rt_raw")

    def refresh_membership(self, segment_id: str, members: Any, now: datetime,
                           cause: str) -> tuple[list[str], list[str], int]:
        """Make the segment's members what the expression ``members`` selects now.
        Judged and applied in one transaction: a list judged outside it could be
        older than realtime verdicts committed meanwhile, and would undo them.
        Returns (entered, exited, size)."""
        with self._writing() as db:
            db.temp("_seg_new", f"SELECT DISTINCT profile_id FROM ({self.compile(members)}) m")
            entered = [r[0] for r in db.rows("""
                SELECT profile_id FROM _seg_new
                WHERE profile_id NOT IN (SELECT profile_id FROM segment_members WHERE segment_id = ?)""", [segment_id])]
            exited = [r[0] for r in db.rows("""
                SELECT profile_id FROM segment_members WHERE segment_id = ?
                AND profile_id NOT IN (SELECT profile_id FROM _seg_new)""", [segment_id])]
            size = db.rows("SELECT count(*) FROM _seg_new")[0][0]
            moves = _moves([(segment_id, p) for p in entered], [(segment_id, p) for p in exited])
            _write_moves(db, moves, now, cause)
            db.execute("""INSERT INTO segment_sizes (segment_id, measured_at, size, entered, exited, cause)
                          VALUES (?, ?, ?, ?, ?, ?)""", [segment_id, now, size, len(entered), len(exited), cause])
            db.execute("UPDATE segments SET refreshed_at = ? WHERE segment_id = ?", [now, segment_id])
            return entered, exited, int(size)

    def segment_sizes(self, segment_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self._session().rows(f"""
            SELECT measured_at, size, entered, exited, cause FROM segment_sizes WHERE segment_id = ?
            ORDER BY {self.SIZE_ORDER} DESC LIMIT ?""", [segment_id, limit])
        return [{"at": at.isoformat(), "size": size, "entered": e, "exited": x, "cause": c}
                for at, size, e, x, c in rows[::-1]]

    def segment_members(self, segment_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = self._session().rows("""
            SELECT profile_id, entered_at FROM segment_members WHERE segment_id = ?
            ORDER BY entered_at, profile_id LIMIT ? OFFSET ?""", [segment_id, limit, offset])
        return [{"profile_id": p, "entered_at": at.isoformat()} for p, at in rows]

    def membership_history(self, profile_id: str | None = None, segment_id: str | None = None,
                           limit: int = 200) -> list[dict[str, Any]]:
        rows = self._session().rows(f"""
            SELECT segment_id, profile_id, entered_at, exited_at, entered_by, exited_by FROM segment_history
            WHERE ({text_param()} IS NULL OR profile_id = ?) AND ({text_param()} IS NULL OR segment_id = ?)
            ORDER BY entered_at DESC, segment_id LIMIT ?""", [profile_id, profile_id, segment_id, segment_id, limit])
        keys = ("segment_id", "profile_id", "entered_at", "exited_at", "entered_by", "exited_by")
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, r)} for r in rows]

    def export_members(self, segment_id: str, path: str | Path, fmt: str, exclude: list[str] | None = None) -> int:
        """Members with their ids, computed basics and traits, to CSV or Parquet
        (but those in ``exclude``: the consent policy refused them)."""
        if fmt not in EXPORT_FORMATS:
            raise ImportFailed(f"unknown export format {fmt!r}; use csv or parquet")
        db = self._session()
        if not db.rows("SELECT count(*) FROM segments WHERE segment_id = ?", [segment_id])[0][0]:
            raise NotFound(f"no segment {segment_id!r}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        select = f"""
            SELECT m.profile_id, m.entered_at,
                   (SELECT string_agg(i.value, '|' ORDER BY i.value) FROM identities i
                    WHERE i.profile_id = m.profile_id AND i.kind = 'user_id') AS user_ids,
                   p.first_seen, p.last_seen, p.event_count, p.order_count, p.revenue,
                   CAST((SELECT {db.json_object_agg('t.key', 't.value')} FROM profile_traits t
                         WHERE t.profile_id = m.profile_id) AS TEXT) AS traits
            FROM segment_members m LEFT JOIN profiles p ON p.profile_id = m.profile_id
            WHERE m.segment_id = ? AND NOT {db.in_list('m.profile_id', 'CAST(? AS TEXT[])')} ORDER BY m.entered_at, m.profile_id"""
        return self._export(db, select, [segment_id, list(exclude or [])], Path(path), fmt)

    def _export(self, db: SqlSession, select: str, params: list[Any], path: Path, fmt: str) -> int:
        """Write the rows of ``select`` to ``path``; a backend may write the file itself."""
        table = db.arrow(select, params)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, path)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, path)
        return int(table.num_rows)


def _moves(entered: list[tuple[str, str]], exited: list[tuple[str, str]]) -> pa.Table:
    return pa.table({
        "segment_id": pa.array([s for s, _ in entered] + [s for s, _ in exited], pa.string()),
        "profile_id": pa.array([p for _, p in entered] + [p for _, p in exited], pa.string()),
        "entering": pa.array([True] * len(entered) + [False] * len(exited), pa.bool_()),
    })


def _write_moves(db: SqlSession, moves: pa.Table, now: datetime, cause: str) -> None:
    """Entering and leaving members into the membership tables, in a few statements."""
    if not moves.num_rows:
        return
    db.put("_seg_moves", moves)
    db.execute("""DELETE FROM segment_members WHERE (segment_id, profile_id) IN
                  (SELECT segment_id, profile_id FROM _seg_moves WHERE NOT entering)""")
    db.execute("""UPDATE segment_history SET exited_at = ?, exited_by = ? FROM _seg_moves m
                  WHERE NOT m.entering AND segment_history.segment_id = m.segment_id
                    AND segment_history.profile_id = m.profile_id AND segment_history.exited_at IS NULL""",
               [now, cause])
    db.execute("""INSERT INTO segment_members (segment_id, profile_id, entered_at)
                  SELECT segment_id, profile_id, ? FROM _seg_moves WHERE entering""", [now])
    db.execute("""INSERT INTO segment_history (segment_id, profile_id, entered_at, entered_by)
                  SELECT segment_id, profile_id, ?, ? FROM _seg_moves WHERE entering""", [now, cause])


class Among:
    """The filter "``column`` is one of these ids", as a literal list: the
    statement carries it, so it needs no parameter (``params`` is None)."""

    params: Any = None

    def __init__(self, db: SqlSession, ids: list[str]):
        self.db, self.ids = db, ids

    def where(self, column: str) -> str:
        return self.db.in_list(column, text_list(self.ids))

    def drop(self) -> None:
        """Forget whatever the filter made (nothing, here)."""


class RealtimeSession:
    """What ``SegmentsStore.realtime_session`` yields. Segments are judged in
    dependency order against ``_rt_members`` (the batch's profiles' current
    memberships, kept up to date as each segment is judged, so ``in_segment``
    sees the new state); the changes are written in bulk at the end."""

    def __init__(self, db: SqlSession, now: datetime, compile: Any):
        self.db, self.now, self.compile = db, now, compile
        self.current: dict[str, set[str]] = {}
        for segment_id, profile_id in db.rows("SELECT segment_id, profile_id FROM _rt_members"):
            self.current.setdefault(segment_id, set()).add(profile_id)
        # Per cause (a segment's own events, or a segment it depends on), the moves.
        self.entered: dict[str, list[tuple[str, str]]] = {}
        self.exited: dict[str, list[tuple[str, str]]] = {}

    def run(self, expr: Any) -> pa.Table:
        return self.db.arrow(self.compile(expr))

    def apply(self, segment_id: str, members: pa.Table, cause: str) -> tuple[list[str], list[str]]:
        now_in = set(members.column("profile_id").to_pylist()) if members.num_rows else set()
        was_in = self.current.get(segment_id, set())
        entered, exited = sorted(now_in - was_in), sorted(was_in - now_in)
        if entered or exited:
            self.current[segment_id] = now_in
            self.db.put("_rt_change", _moves([(segment_id, p) for p in entered], [(segment_id, p) for p in exited]))
            self.db.execute("""DELETE FROM _rt_members WHERE (segment_id, profile_id) IN
                               (SELECT segment_id, profile_id FROM _rt_change WHERE NOT entering)""")
            self.db.execute("INSERT INTO _rt_members SELECT segment_id, profile_id FROM _rt_change WHERE entering")
            self.entered.setdefault(cause, []).extend((segment_id, p) for p in entered)
            self.exited.setdefault(cause, []).extend((segment_id, p) for p in exited)
        return entered, exited

    def write(self) -> None:
        """Every move into the membership tables, each with the cause it had."""
        db, now = self.db, self.now
        for cause in sorted(set(self.entered) | set(self.exited)):
            moves = _moves(self.entered.get(cause, []), self.exited.get(cause, []))
            if not moves.num_rows:
                continue
            _write_moves(db, moves, now, cause)
            db.execute("""INSERT INTO segment_sizes (segment_id, measured_at, size, entered, exited, cause)
                          SELECT m.segment_id, ?, (SELECT count(*) FROM segment_members s WHERE s.segment_id = m.segment_id),
                                 count(*) FILTER (WHERE m.entering), count(*) FILTER (WHERE NOT m.entering), ?
                          FROM _seg_moves m GROUP BY m.segment_id""", [now, cause])
