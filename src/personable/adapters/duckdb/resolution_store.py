"""Probabilistic identity resolution on DuckDB: scored pairs, merges that can be
undone, and the audit trail. Mixin for DuckDBStore.

A merge here reuses the write path's merge (identities, redirects, folded
aggregates, traits, consents move to the survivor) and keeps a snapshot of
what the merged profile owned. Undo puts those identities and redirects back,
re-attributes events by their ids, and rebuilds both profiles from their
events -- events are the truth, profiles are derived from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Sequence

import orjson
import pyarrow as pa

from ...ports import PipelineSettings, StagedInput
from .batch import DuckDBBatch
from .parse_sql import json_path, q


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

HUMAN = ("accepted", "rejected", "undone")
Standardize = Callable[[list[tuple[str, str, str | None]]], list[tuple]]


class ResolutionStore:
    _write_lock: Any
    _writer: Any

    def cursor(self) -> Any: ...
    def _transaction(self) -> Any: ...
    def _new_batch(self, con: Any, staged: StagedInput, settings: PipelineSettings) -> DuckDBBatch: ...

    # -- runs and pairs ---------------------------------------------------------------
    def start_resolution_run(self, now: datetime) -> int:
        with self._write_lock:
            return self._writer.execute(
                "INSERT INTO resolution_runs (run_id, started_at) VALUES (nextval('resolution_run_seq'), ?) RETURNING run_id",
                [now]).fetchall()[0][0]

    def finish_resolution_run(self, run_id: int, now: datetime, summary: dict[str, Any], model: dict[str, Any]) -> None:
        with self._write_lock:
            self._writer.execute("UPDATE resolution_runs SET finished_at = ?, summary = ?, model = ? WHERE run_id = ?",
                                 [now, orjson.dumps(summary).decode(), orjson.dumps(model, default=str).decode(), run_id])

    def person_records(self, fields: list[str], standardized: set[str]) -> pa.Table:
        """One record per distinct (current profile, values of ``fields``) among
        identify events: the standard form of configured fields, the observed
        value of the others (events stored before standardization: observed)."""
        def value(f: str) -> str:
            path = q(json_path(f))
            raw = f"e.traits ->> {path}"
            if f in standardized:
                return f"CASE WHEN e.std_traits IS NULL THEN {raw} ELSE e.std_traits ->> {path} END AS {_ident(f)}"
            return f"{raw} AS {_ident(f)}"
        cols = ", ".join(value(f) for f in fields)
        any_value = " OR ".join(f"{_ident(f)} IS NOT NULL" for f in fields)
        return self.cursor().sql(f"""
            SELECT (row_number() OVER (ORDER BY profile_id, {', '.join(_ident(f) for f in fields)}))::VARCHAR AS unique_id, *
            FROM (SELECT DISTINCT coalesce(r.to_profile, e.profile_id) AS profile_id, {cols}
                  FROM events e LEFT JOIN profile_redirects r ON r.from_profile = e.profile_id
                  WHERE e.type = 'identify' AND json_type(e.traits) = 'OBJECT')
            WHERE {any_value}""").to_arrow_table()

    def profile_facts(self) -> dict[str, tuple[datetime, bool]]:
        """profile -> (created_at, has a userId), for choosing survivors and guards."""
        return {pid: (created, bool(users)) for pid, created, users in self.cursor().execute("""
            SELECT p.profile_id, p.created_at, count(i.value) FILTER (WHERE i.kind = 'user_id')
            FROM profiles p LEFT JOIN identities i USING (profile_id) GROUP BY ALL""").fetchall()}

    def human_decisions(self) -> dict[tuple[str, str], str]:
        return {(l, r): s for l, r, s in self.cursor().execute(
            "SELECT left_profile, right_profile, status FROM match_pairs WHERE status IN ('accepted', 'rejected', 'undone')"
        ).fetchall()}

    def record_pairs(self, run_id: int, pairs: pa.Table) -> None:
        """Upsert scored pairs (columns left_profile, right_profile, match_probability,
        match_weight, explanation, status, reason); a person's decision is never overwritten."""
        with self._write_lock:
            con = self._writer
            con.register("_scored", pairs)
            con.execute("""
                INSERT INTO match_pairs BY NAME
                SELECT left_profile, right_profile, ? AS run_id, match_probability, match_weight,
                       explanation::JSON AS explanation, status, reason
                FROM _scored
                ON CONFLICT (left_profile, right_profile) DO UPDATE SET
                    run_id = excluded.run_id, match_probability = excluded.match_probability,
                    match_weight = excluded.match_weight, explanation = excluded.explanation,
                    status = excluded.status, reason = excluded.reason
                WHERE match_pairs.status NOT IN ('accepted', 'rejected', 'undone')""", [run_id])
            con.unregister("_scored")

    def match_pairs(self, status: str | None = None, limit: int = 50, offset: int = 0,
                    profile: str | None = None) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT m.*, coalesce(rl.to_profile, m.left_profile) AS left_now, coalesce(rr.to_profile, m.right_profile) AS right_now
            FROM match_pairs m
            LEFT JOIN profile_redirects rl ON rl.from_profile = m.left_profile
            LEFT JOIN profile_redirects rr ON rr.from_profile = m.right_profile
            WHERE ($status IS NULL OR m.status = $status)
              AND ($profile IS NULL OR $profile IN (m.left_profile, m.right_profile,
                                                    coalesce(rl.to_profile, m.left_profile), coalesce(rr.to_profile, m.right_profile)))
            ORDER BY m.match_probability DESC, m.left_profile, m.right_profile
            LIMIT $limit OFFSET $offset""", {"status": status, "limit": limit, "offset": offset, "profile": profile})
        cols = [d[0] for d in rows.description]
        out = []
        for row in rows.fetchall():
            item = dict(zip(cols, row))
            item["explanation"] = orjson.loads(item["explanation"]) if item["explanation"] else []
            if item.get("decided_at"):
                item["decided_at"] = item["decided_at"].isoformat()
            out.append(item)
        return out

    def current_profile(self, profile_id: str) -> str:
        rows = self.cursor().execute("SELECT to_profile FROM profile_redirects WHERE from_profile = ?", [profile_id]).fetchall()
        return rows[0][0] if rows else profile_id

    def set_pair_status(self, left: str, right: str, status: str, actor: str | None, now: datetime) -> None:
        with self._write_lock:
            self._writer.execute("""UPDATE match_pairs SET status = ?, decided_by = ?, decided_at = ?
                                    WHERE left_profile = ? AND right_profile = ?""", [status, actor, now, left, right])

    # -- merging and undoing --------------------------------------------------------
    def merge_profiles(self, merges: Sequence[tuple[str, str, float | None]], actor: str, now: datetime,
                       settings: PipelineSettings) -> int:
        """Merge (from, into, match probability) with snapshots for undo; one transaction."""
        merges = [(f, i, p) for f, i, p in merges if f != i]
        if not merges:
            return 0
        with self._transaction() as con:
            snapshots = self._snapshots(con, [m[0] for m in merges])
            batch = self._new_batch(con, StagedInput(source="resolution", origin="resolution", received_at=now), settings)
            batch._apply_merges([(f, i) for f, i, _ in merges], reason="probabilistic")
            con.executemany(
                """INSERT INTO identity_audit (happened_at, action, actor, from_profile, into_profile, match_probability, snapshot)
                   VALUES (?, 'merge', ?, ?, ?, ?, ?)""",
                [[now, actor, f, i, p, orjson.dumps(snapshots.get(f, {})).decode()] for f, i, p in merges])
        return len(merges)

    @staticmethod
    def _snapshots(con: Any, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
        """What each profile owns before it is merged away: identities and the
        profiles that were merged into it earlier."""
        con.register("_snap_ids", pa.table({"profile_id": pa.array(profile_ids, pa.string())}))
        out: dict[str, dict[str, Any]] = {p: {"identities": [], "redirects": []} for p in profile_ids}
        for pid, kind, value in con.execute(
                "SELECT profile_id, kind, value FROM identities JOIN _snap_ids USING (profile_id)").fetchall():
            out[pid]["identities"].append([kind, value])
        for to, frm in con.execute(
                "SELECT to_profile, from_profile FROM profile_redirects JOIN _snap_ids ON to_profile = profile_id").fetchall():
            out[to]["redirects"].append(frm)
        con.unregister("_snap_ids")
        return out

    def last_merge(self, from_profile: str) -> dict[str, Any] | None:
        rows = self.cursor().execute("""
            SELECT id, happened_at, actor, from_profile, into_profile, match_probability, snapshot FROM identity_audit
            WHERE action = 'merge' AND from_profile = ? ORDER BY id DESC LIMIT 1""", [from_profile]).fetchall()
        if not rows:
            return None
        i, at, actor, frm, into, prob, snap = rows[0]
        undone = self.cursor().execute(
            "SELECT count(*) FROM identity_audit WHERE action = 'undo' AND from_profile = ? AND id > ?", [frm, i]).fetchall()[0][0]
        return {"id": i, "merged_at": at.isoformat(), "actor": actor, "from_profile": frm, "into_profile": into,
                "match_probability": prob, "snapshot": orjson.loads(snap) if snap else {}, "undone": bool(undone)}

    def audit(self, profile_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT id, happened_at, action, actor, from_profile, into_profile, match_probability FROM identity_audit
            WHERE $p IS NULL OR $p IN (from_profile, into_profile) ORDER BY id DESC LIMIT $limit""",
                                     {"p": profile_id, "limit": limit}).fetchall()
        keys = ("id", "at", "action", "actor", "from_profile", "into_profile", "match_probability")
        return [{**dict(zip(keys, r)), "at": r[1].isoformat()} for r in rows]

    def add_audit(self, action: str, actor: str | None, from_profile: str | None, into_profile: str | None,
                  probability: float | None, now: datetime) -> None:
        with self._write_lock:
            self._writer.execute("""INSERT INTO identity_audit (happened_at, action, actor, from_profile, into_profile, match_probability)
                                    VALUES (?, ?, ?, ?, ?, ?)""", [now, action, actor, from_profile, into_profile, probability])

    def unmerge(self, merge: dict[str, Any], actor: str, now: datetime, settings: PipelineSettings,
                standardize: Standardize, quality_fields: list[tuple[str, str | None]]) -> list[str]:
        """Undo one probabilistic merge; returns the profiles rebuilt."""
        frm, into = merge["from_profile"], merge["into_profile"]
        snap = merge["snapshot"]
        with self._transaction() as con:
            survivor = con.execute("SELECT coalesce((SELECT to_profile FROM profile_redirects WHERE from_profile = ?), ?)",
                                   [into, into]).fetchall()[0][0]
            con.register("_ids_back", pa.table({
                "kind": pa.array([k for k, _ in snap.get("identities", [])], pa.string()),
                "value": pa.array([v for _, v in snap.get("identities", [])], pa.string())}))
            con.execute("""UPDATE identities SET profile_id = ? FROM _ids_back b
                           WHERE identities.kind = b.kind AND identities.value = b.value AND identities.profile_id = ?""",
                        [frm, survivor])
            con.unregister("_ids_back")
            back = list(snap.get("redirects", []))
            con.execute("DELETE FROM profile_redirects WHERE from_profile = ?", [frm])
            if back:
                con.register("_redirect_back", pa.table({"p": pa.array(back, pa.string())}))
                con.execute("UPDATE profile_redirects SET to_profile = ? WHERE from_profile IN (SELECT p FROM _redirect_back)", [frm])
                con.unregister("_redirect_back")
            con.execute("""INSERT INTO identity_audit (happened_at, action, actor, from_profile, into_profile, match_probability)
                           VALUES (?, 'undo', ?, ?, ?, ?)""", [now, actor, frm, survivor, merge.get("match_probability")])
            rebuilt = self._rebuild_profiles(con, [frm, survivor], now, settings, standardize, quality_fields)
        return rebuilt

    def _rebuild_profiles(self, con: Any, profile_ids: list[str], now: datetime, settings: PipelineSettings,
                          standardize: Standardize, quality_fields: list[tuple[str, str | None]]) -> list[str]:
        """Re-attribute the events of these profiles by their ids and rebuild the
        profiles (aggregates, traits, consents) from those events."""
        con.register("_rebuild_ids", pa.table({"profile_id": pa.array(profile_ids, pa.string())}))
        con.execute("""
            UPDATE events SET profile_id = coalesce(x.pu, x.pa_, events.profile_id)
            FROM (SELECT e.message_id, iu.profile_id AS pu, ia.profile_id AS pa_ FROM events e
                  LEFT JOIN identities iu ON iu.kind = 'user_id' AND iu.value = e.user_id
                  LEFT JOIN identities ia ON ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                  WHERE e.profile_id IN (SELECT profile_id FROM _rebuild_ids)
                     OR e.profile_id IN (SELECT from_profile FROM profile_redirects
                                         WHERE to_profile IN (SELECT profile_id FROM _rebuild_ids))) x
            WHERE events.message_id = x.message_id""")
        for table in ("profiles", "profile_traits", "profile_consents"):
            con.execute(f"DELETE FROM {table} WHERE profile_id IN (SELECT profile_id FROM _rebuild_ids)")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _stored AS
            SELECT e.*, row_number() OVER (ORDER BY e.timestamp, e.message_id) AS seq,
                   CASE WHEN json_type(e.context, '$.consent.categoryPreferences') = 'OBJECT'
                        THEN json_extract(e.context, '$.consent.categoryPreferences') END AS consent_context,
                   CASE WHEN e.type = 'identify' AND json_type(e.traits, '$.consent') = 'OBJECT'
                        THEN json_extract(e.traits, '$.consent') END AS consent_traits
            FROM events e WHERE e.profile_id IN (SELECT profile_id FROM _rebuild_ids)""")
        batch = self._new_batch(con, StagedInput(source="resolution", origin="resolution", received_at=now), settings)
        values = batch.trait_values(quality_fields, table="_stored")
        batch.set_standardized(standardize(values))
        batch._update_profiles()
        batch._update_traits()
        batch._update_consents(log=False)  # the consent log already holds these observations
        con.unregister("_rebuild_ids")
        return [r[0] for r in con.execute("SELECT DISTINCT profile_id FROM _stored").fetchall()]
