"""Batch jobs over stored data: re-standardize traits, recompute revenue in the
reporting currency, and fill missing values (``QualityStore``), on any SQL store.

As on the write path, the domain decides values in Python over distinct
inputs; these methods move them in and out and apply them in bulk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from .quality_staging import q
from .session import SqlSession
from .store_base import SqlStoreBase

TRAIT_INSERT = "INSERT INTO profile_traits (profile_id, key, value, observed_at, source, message_id, raw_value, origin)"


def _order_sums() -> str:
    """Per current profile, the revenue of its order events (``?``: the order event)."""
    return """SELECT coalesce(rd.to_profile, e.profile_id) AS profile_id,
                     coalesce(sum(e.revenue_reporting), 0) AS revenue
              FROM events e LEFT JOIN profile_redirects rd ON rd.from_profile = e.profile_id
              WHERE e.type = 'track' AND e.event = ? GROUP BY 1"""


class QualityJobs(SqlStoreBase):
    def _observed(self, db: SqlSession, alias: str) -> str:
        return db.json_text(f"coalesce({alias}.raw_value, {alias}.value)")

    def _hint_join(self, db: SqlSession, hint: str | None) -> tuple[str, str]:
        if not hint:
            return "", "CAST(NULL AS TEXT)"
        return (f"LEFT JOIN (SELECT profile_id, {self._observed(db, 'h0')} AS observed FROM profile_traits h0 "
                f"WHERE key = {q(hint)}) h ON h.profile_id = t.profile_id", "h.observed")

    def stored_trait_values(self, field: str, hint: str | None) -> list[tuple[str, str | None]]:
        """Distinct (observed text, hint text) of a field over stored, observed traits."""
        db = self._session()
        join, hint_sql = self._hint_join(db, hint)
        return [(r[0], r[1]) for r in db.rows(f"""
            SELECT DISTINCT {self._observed(db, 't')}, {hint_sql}
            FROM profile_traits t {join}
            WHERE t.key = ? AND t.origin <> 'imputed'""", [field])]

    def restandardize(self, field: str, hint: str | None, rows: list[tuple[str, str | None, str | None, str]],
                      now: datetime) -> dict[str, Any]:
        """Apply (observed, hint, value, status) to stored traits of ``field``.
        Returns counts and the profiles whose traits changed."""
        table = pa.table({
            "observed": pa.array([r[0] for r in rows], pa.string()), "hint": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.string()), "status": pa.array([r[3] for r in rows], pa.string()),
        })
        with self._writing() as db:
            join, hint_sql = self._hint_join(db, hint)
            db.put("_restd", table)
            db.temp("_restd_rows", f"""
                SELECT t.profile_id, coalesce(t.raw_value, t.value) AS observed_json, s.value, s.status
                FROM profile_traits t {join}
                JOIN _restd s ON s.observed = {self._observed(db, 't')} AND s.hint IS NOT DISTINCT FROM {hint_sql}
                WHERE t.key = {q(field)} AND t.origin <> 'imputed'""")
            new_value = f"CASE WHEN r.status = 'standardized' THEN {db.to_json('r.value')} ELSE r.observed_json END"
            changed = [r[0] for r in db.rows(f"""
                SELECT r.profile_id FROM _restd_rows r JOIN profile_traits t
                  ON t.profile_id = r.profile_id AND t.key = {q(field)}
                WHERE r.status = 'missing'
                   OR CAST(t.value AS TEXT) IS DISTINCT FROM CAST({new_value} AS TEXT)
                   OR t.origin IS DISTINCT FROM r.status""")]
            counts = {s: n for s, n in db.rows("SELECT status, count(*) FROM _restd_rows GROUP BY status")}
            db.execute(f"""DELETE FROM profile_traits WHERE key = {q(field)}
                           AND profile_id IN (SELECT profile_id FROM _restd_rows WHERE status = 'missing')""")
            db.execute(f"""
                UPDATE profile_traits SET value = {new_value},
                    raw_value = CASE WHEN r.status = 'standardized' THEN r.observed_json END,
                    origin = r.status
                FROM _restd_rows r
                WHERE profile_traits.profile_id = r.profile_id AND profile_traits.key = {q(field)}
                  AND r.status <> 'missing'""")
            if changed:
                _touch(db, changed, now)
        return {"field": field, "values": len(rows), "records": counts, "changed_profiles": changed}

    def recompute_revenue(self, reporting: str, rates: dict[str, float], now: datetime,
                          order_event: str) -> dict[str, Any]:
        """Revenue in the reporting currency, for every stored event and profile
        (a profile's revenue: the sum over its ``order_event`` events)."""
        table = pa.table({"currency": pa.array(list(rates), pa.string()),
                          "rate": pa.array(list(rates.values()), pa.float64())})
        with self._writing() as db:
            db.put("_rates_now", table)
            db.execute(f"""
                UPDATE events SET revenue_reporting = CASE
                    WHEN events.currency IS NULL OR events.currency = {q(reporting)} THEN events.revenue
                    ELSE events.revenue * (SELECT rate FROM _rates_now r WHERE r.currency = events.currency) END
                WHERE revenue IS NOT NULL""")
            changed = [r[0] for r in db.rows(f"""
                SELECT p.profile_id FROM profiles p JOIN ({_order_sums()}) s ON s.profile_id = p.profile_id
                WHERE abs(p.revenue - s.revenue) > 1e-9""", [order_event])]
            db.execute(f"""
                UPDATE profiles SET revenue = s.revenue, updated_at = ?
                FROM ({_order_sums()}) s
                WHERE profiles.profile_id = s.profile_id AND abs(profiles.revenue - s.revenue) > 1e-9""",
                       [now, order_event])
        return {"changed_profiles": changed}

    # -- missing values -----------------------------------------------------------
    def observed_values(self, field: str) -> pa.Table:
        table = self._session().arrow(
            "SELECT value, value_type FROM trait_values WHERE field = ? AND origin <> 'imputed' AND value IS NOT NULL",
            [field])
        if table.num_rows == 0:
            return pa.table({"value": pa.array([], pa.string()), "value_type": pa.array([], pa.string())})
        return table

    def missing_with(self, field: str, source: str) -> list[tuple[str, str]]:
        """(profile, the source field's value) for profiles that lack ``field`` but have ``source``."""
        return [(r[0], r[1]) for r in self._session().rows("""
            SELECT s.profile_id, s.value FROM trait_values s
            WHERE s.field = ? AND s.value IS NOT NULL AND s.origin <> 'imputed'
              AND NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = s.profile_id AND t.key = ?
                              AND t.origin <> 'imputed')""", [source, field])]

    def impute(self, field: str, policy: str, constant: Any, derived: list[tuple[str, Any]] | None,
               now: datetime) -> int:
        """Replace the field's imputed values: ``constant`` for every profile
        without an observed value, or ``derived`` (profile, value) pairs."""
        with self._writing() as db:
            removed = db.rows("DELETE FROM profile_traits WHERE key = ? AND origin = 'imputed' RETURNING profile_id",
                              [field])
            source = f"imputed:{policy}"
            if derived is None:
                added = db.rows(f"""
                    {TRAIT_INSERT}
                    SELECT p.profile_id, ?, {db.json_param()}, CAST(? AS TIMESTAMPTZ), ?, NULL, NULL, 'imputed'
                    FROM profiles p WHERE NOT EXISTS (SELECT 1 FROM profile_traits t
                                                      WHERE t.profile_id = p.profile_id AND t.key = ?)
                    RETURNING profile_id""", [field, orjson.dumps(constant).decode(), now, source, field])
            else:
                db.put("_derived", pa.table({
                    "profile_id": pa.array([d[0] for d in derived], pa.string()),
                    "value": pa.array([orjson.dumps(d[1]).decode() for d in derived], pa.string()),
                }))
                added = db.rows(f"""
                    {TRAIT_INSERT}
                    SELECT d.profile_id, ?, {db.as_json('d.value')}, CAST(? AS TIMESTAMPTZ), ?, NULL, NULL, 'imputed'
                    FROM _derived d JOIN profiles p ON p.profile_id = d.profile_id
                    WHERE NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = d.profile_id AND t.key = ?)
                    RETURNING profile_id""", [field, now, source, field])
            if added or removed:
                _touch(db, [r[0] for r in added + removed], now)
        return len(added)


def _touch(db: SqlSession, profile_ids: list[str], now: datetime) -> None:
    db.put("_touched", pa.table({"profile_id": pa.array(sorted(set(profile_ids)), pa.string())}))
    db.execute("UPDATE profiles SET updated_at = ? WHERE profile_id IN (SELECT profile_id FROM _touched)", [now])
