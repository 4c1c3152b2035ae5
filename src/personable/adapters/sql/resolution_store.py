"""Probabilistic identity resolution on any SQL store: scored pairs, merges that
can be undone, and the audit trail (``ResolutionLedger``, ``ProfileMerges``).

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

from ...events.spec import CONSENT_FIELDS
from ...profiles import traits
from ...ports import PipelineSettings, StagedInput
from .computed_store import ident
from .session import SqlSession, text_param
from .store_base import SqlStoreBase
from .upsert import upsert

HUMAN = ("accepted", "rejected", "undone")
Standardize = Callable[[list[tuple[str, str, str | None]]], list[tuple[Any, ...]]]
PAIR_COLUMNS = ("left_profile", "right_profile", "run_id", "match_probability", "match_weight", "explanation",
                "status", "reason")


class ResolutionStore(SqlStoreBase):
    # -- runs and pairs ---------------------------------------------------------------
    def start_resolution_run(self, now: datetime) -> int:
        with self._writing() as db:
            return int(db.rows("INSERT INTO resolution_runs (run_id, started_at) "
                               "VALUES (nextval('resolution_run_seq'), ?) RETURNING run_id", [now])[0][0])

    def finish_resolution_run(self, run_id: int, now: datetime, summary: dict[str, Any], model: dict[str, Any]) -> None:
        with self._writing() as db:
            j = db.json_param()
            db.execute(f"UPDATE resolution_runs SET finished_at = ?, summary = {j}, model = {j} WHERE run_id = ?",
                       [now, orjson.dumps(summary).decode(), orjson.dumps(model, default=str).decode(), run_id])

    def person_records(self, fields: list[str], standardized: set[str]) -> pa.Table:
        """One record per distinct (current profile, values of ``fields``) among
        identify events: the standard form of configured fields, the observed
        value of the others (events stored before standardization: observed)."""
        db = self._session()

        def value(f: str) -> str:
            raw = db.json_field_text("e.traits", f)
            if f in standardized:
                return f"CASE WHEN e.std_traits IS NULL THEN {raw} ELSE {db.json_field_text('e.std_traits', f)} END AS {ident(f)}"
            return f"{raw} AS {ident(f)}"
        cols = ", ".join(value(f) for f in fields)
        any_value = " OR ".join(f"{ident(f)} IS NOT NULL" for f in fields)
        table = db.arrow(f"""
            SELECT CAST(row_number() OVER (ORDER BY profile_id, {', '.join(ident(f) for f in fields)}) AS TEXT) AS unique_id, *
            FROM (SELECT DISTINCT coalesce(r.to_profile, e.profile_id) AS profile_id, {cols}
                  FROM events e LEFT JOIN profile_redirects r ON r.from_profile = e.profile_id
                  WHERE e.type = 'identify' AND {db.is_object('e.traits')}) d
            WHERE {any_value}""")
        if table.num_rows == 0:   # typed even when empty: the resolver reads its columns
            return pa.table({c: pa.array([], pa.string()) for c in ["unique_id", "profile_id", *fields]})
        return table

    def profile_facts(self) -> dict[str, tuple[datetime, bool]]:
        """profile -> (created_at, has a userId), for choosing survivors and guards."""
        return {pid: (created, bool(users)) for pid, created, users in self._session().rows("""
            SELECT p.profile_id, p.created_at, count(i.value) FILTER (WHERE i.kind = 'user_id')
            FROM profiles p LEFT JOIN identities i ON i.profile_id = p.profile_id GROUP BY p.profile_id, p.created_at""")}

    def human_decisions(self) -> dict[tuple[str, str], str]:
        return {(left, right): s for left, right, s in self._session().rows(
            "SELECT left_profile, right_profile, status FROM match_pairs WHERE status IN ('accepted', 'rejected', 'undone')")}

    def record_pairs(self, run_id: int, pairs: pa.Table) -> None:
        """Upsert scored pairs (columns left_profile, right_profile, match_probability,
        match_weight, explanation, status, reason); a person's decision is never overwritten."""
        with self._writing() as db:
            db.put("_scored", pairs.select([c for c in PAIR_COLUMNS if c != "run_id"]))
            updates = ", ".join(f"{c} = excluded.{c}" for c in PAIR_COLUMNS[2:])
            db.execute(f"""
                INSERT INTO match_pairs ({', '.join(PAIR_COLUMNS)})
                SELECT left_profile, right_profile, ?, match_probability, match_weight,
                       {db.as_json('explanation')}, status, reason
                FROM _scored
                ON CONFLICT (left_profile, right_profile) DO UPDATE SET {updates}
                WHERE match_pairs.status NOT IN ('accepted', 'rejected', 'undone')""", [run_id])

    def match_pairs(self, status: str | None = None, limit: int = 50, offset: int = 0,
                    profile: str | None = None) -> list[dict[str, Any]]:
        p = text_param()
        rows = self._session().dicts(f"""
            SELECT m.*, coalesce(rl.to_profile, m.left_profile) AS left_now, coalesce(rr.to_profile, m.right_profile) AS right_now
            FROM match_pairs m
            LEFT JOIN profile_redirects rl ON rl.from_profile = m.left_profile
            LEFT JOIN profile_redirects rr ON rr.from_profile = m.right_profile
            WHERE ({p} IS NULL OR m.status = ?)
              AND ({p} IS NULL OR ? IN (m.left_profile, m.right_profile,
                                        coalesce(rl.to_profile, m.left_profile), coalesce(rr.to_profile, m.right_profile)))
            ORDER BY m.match_probability DESC, m.left_profile, m.right_profile
            LIMIT ? OFFSET ?""", [status, status, profile, profile, limit, offset])
        for item in rows:
            item["explanation"] = orjson.loads(item["explanation"]) if item["explanation"] else []
            if item.get("decided_at"):
                item["decided_at"] = item["decided_at"].isoformat()
        return rows

    def current_profile(self, profile_id: str) -> str:
        rows = self._session().rows("SELECT to_profile FROM profile_redirects WHERE from_profile = ?", [profile_id])
        return str(rows[0][0]) if rows else profile_id

    def set_pair_status(self, left: str, right: str, status: str, actor: str | None, now: datetime) -> None:
        with self._writing() as db:
            db.execute("""UPDATE match_pairs SET status = ?, decided_by = ?, decided_at = ?
                          WHERE left_profile = ? AND right_profile = ?""", [status, actor, now, left, right])

    # -- merging and undoing --------------------------------------------------------
    def merge_profiles(self, merges: Sequence[tuple[str, str, float | None]], actor: str, now: datetime,
                       settings: PipelineSettings) -> int:
        """Merge (from, into, match probability) with snapshots for undo; one transaction."""
        merges = [(f, i, p) for f, i, p in merges if f != i]
        if not merges:
            return 0
        with self._writing() as db:
            snapshots = _snapshots(db, [m[0] for m in merges])
            batch = self._batch_on(db, StagedInput(source="resolution", origin="resolution", received_at=now), settings)
            batch._apply_merges([(f, i) for f, i, _ in merges], reason="probabilistic")
            db.executemany(
                f"""INSERT INTO identity_audit (happened_at, action, actor, from_profile, into_profile, match_probability, snapshot)
                    VALUES (?, 'merge', ?, ?, ?, ?, {db.json_param()})""",
                [[now, actor, f, i, p, orjson.dumps(snapshots.get(f, {})).decode()] for f, i, p in merges])
        return len(merges)

    def last_merge(self, from_profile: str) -> dict[str, Any] | None:
        db = self._session()
        rows = db.rows("""
            SELECT id, happened_at, actor, from_profile, into_profile, match_probability, snapshot FROM identity_audit
            WHERE action = 'merge' AND from_profile = ? ORDER BY id DESC LIMIT 1""", [from_profile])
        if not rows:
            return None
        i, at, actor, frm, into, prob, snap = rows[0]
        undone = db.rows("SELECT count(*) FROM identity_audit WHERE action = 'undo' AND from_profile = ? AND id > ?",
                         [frm, i])[0][0]
        return {"id": i, "merged_at": at.isoformat(), "actor": actor, "from_profile": frm, "into_profile": into,
                "match_probability": prob, "snapshot": orjson.loads(snap) if snap else {}, "undone": bool(undone)}

    def audit(self, profile_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._session().rows(f"""
            SELECT id, happened_at, action, actor, from_profile, into_profile, match_probability FROM identity_audit
            WHERE {text_param()} IS NULL OR ? IN (from_profile, into_profile) ORDER BY id DESC LIMIT ?""",
                                    [profile_id, profile_id, limit])
        keys = ("id", "at", "action", "actor", "from_profile", "into_profile", "match_probability")
        return [{**dict(zip(keys, r)), "at": r[1].isoformat()} for r in rows]

    def add_audit(self, action: str, actor: str | None, from_profile: str | None, into_profile: str | None,
                  probability: float | None, now: datetime) -> None:
        with self._writing() as db:
            db.execute("""INSERT INTO identity_audit (happened_at, action, actor, from_profile, into_profile, match_probability)
                          VALUES (?, ?, ?, ?, ?, ?)""", [now, action, actor, from_profile, into_profile, probability])

    def unmerge(self, merge: dict[str, Any], actor: str, now: datetime, settings: PipelineSettings,
                standardize: Standardize, quality_fields: list[tuple[str, str | None]]) -> list[str]:
        """Undo one probabilistic merge; returns the profiles rebuilt."""
        frm, into = merge["from_profile"], merge["into_profile"]
        snap = merge["snapshot"]
        with self._writing() as db:
            survivor = db.rows("SELECT coalesce((SELECT to_profile FROM profile_redirects WHERE from_profile = ?), ?)",
                               [into, into])[0][0]
            db.put("_ids_back", pa.table({
                "kind": pa.array([k for k, _ in snap.get("identities", [])], pa.string()),
                "value": pa.array([v for _, v in snap.get("identities", [])], pa.string())}))
            db.execute("""UPDATE identities SET profile_id = ? FROM _ids_back b
                          WHERE identities.kind = b.kind AND identities.value = b.value AND identities.profile_id = ?""",
                       [frm, survivor])
            back = list(snap.get("redirects", []))
            db.execute("DELETE FROM profile_redirects WHERE from_profile = ?", [frm])
            if back:
                db.put("_redirect_back", pa.table({"p": pa.array(back, pa.string())}))
                db.execute("UPDATE profile_redirects SET to_profile = ? WHERE from_profile IN (SELECT p FROM _redirect_back)",
                           [frm])
            db.execute("""INSERT INTO identity_audit (happened_at, action, actor, from_profile, into_profile, match_probability)
                          VALUES (?, 'undo', ?, ?, ?, ?)""", [now, actor, frm, survivor, merge.get("match_probability")])
            return self._rebuild_profiles(db, [frm, survivor], now, settings, standardize, quality_fields)

    def _rebuild_profiles(self, db: SqlSession, profile_ids: list[str], now: datetime, settings: PipelineSettings,
                          standardize: Standardize, quality_fields: list[tuple[str, str | None]]) -> list[str]:
        """Re-attribute the events of these profiles by their ids and rebuild the
        profiles (aggregates, traits, consents) from those events."""
        db.put("_rebuild_ids", pa.table({"profile_id": pa.array(profile_ids, pa.string())}))
        db.execute("""
            UPDATE events SET profile_id = coalesce(x.pu, x.pa_, events.profile_id)
            FROM (SELECT e.message_id, iu.profile_id AS pu, ia.profile_id AS pa_ FROM events e
                  LEFT JOIN identities iu ON iu.kind = 'user_id' AND iu.value = e.user_id
                  LEFT JOIN identities ia ON ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                  WHERE e.profile_id IN (SELECT profile_id FROM _rebuild_ids)
                     OR e.profile_id IN (SELECT from_profile FROM profile_redirects
                                         WHERE to_profile IN (SELECT profile_id FROM _rebuild_ids))) x
            WHERE events.message_id = x.message_id""")
        for table in ("profiles", "profile_traits", "profile_consents"):
            db.execute(f"DELETE FROM {table} WHERE profile_id IN (SELECT profile_id FROM _rebuild_ids)")
        consent_traits = db.json_object_at("e.traits", *CONSENT_FIELDS[1][1:])
        db.temp("_stored", f"""
            SELECT e.*, row_number() OVER (ORDER BY e.timestamp, e.message_id) AS seq,
                   {db.json_object_at('e.context', *CONSENT_FIELDS[0][1:])} AS consent_context,
                   CASE WHEN e.type = 'identify' THEN {consent_traits} END AS consent_traits
            FROM events e WHERE e.profile_id IN (SELECT profile_id FROM _rebuild_ids)""")
        batch = self._batch_on(db, StagedInput(source="resolution", origin="resolution", received_at=now), settings)
        values = batch.trait_values(quality_fields, table="_stored")
        batch.set_standardized(standardize(values))
        batch._update_profiles()
        batch._update_traits()
        batch._update_consents(log=False)  # the consent log already holds these observations
        # Consents given through the API are in no event: the log has them.
        cols = ", ".join(traits.CONSENT_COLUMNS)
        db.execute(upsert("profile_consents", traits.CONSENT_COLUMNS, ["profile_id", "purpose"], f"""
            SELECT {cols} FROM (
                SELECT {cols}, row_number() OVER (PARTITION BY profile_id, purpose ORDER BY observed_at DESC) AS rn
                FROM consent_log WHERE via = 'api' AND profile_id IN (SELECT profile_id FROM _rebuild_ids)) c
            WHERE rn = 1""", where="excluded.observed_at >= profile_consents.observed_at"))
        return [r[0] for r in db.rows("SELECT DISTINCT profile_id FROM _stored")]


def _snapshots(db: SqlSession, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What each profile owns before it is merged away: identities and the
    profiles that were merged into it earlier."""
    db.put("_snap_ids", pa.table({"profile_id": pa.array(profile_ids, pa.string())}))
    out: dict[str, dict[str, Any]] = {p: {"identities": [], "redirects": []} for p in profile_ids}
    for pid, kind, value in db.rows(
            "SELECT i.profile_id, i.kind, i.value FROM identities i JOIN _snap_ids s ON s.profile_id = i.profile_id"):
        out[pid]["identities"].append([kind, value])
    for to, frm in db.rows(
            "SELECT to_profile, from_profile FROM profile_redirects JOIN _snap_ids ON to_profile = profile_id"):
        out[to]["redirects"].append(frm)
    return out
