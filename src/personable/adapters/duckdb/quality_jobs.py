"""Batch jobs over stored data: re-standardize traits, recompute revenue in the
reporting currency, and fill missing values. Mixin for DuckDBStore.

As on the write path, the domain decides values in Python over distinct
inputs; these methods move them in and out and apply them in bulk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from .parse_sql import q


class QualityJobs:
    _write_lock: Any
    _writer: Any

    def cursor(self) -> Any: ...
    def _transaction(self) -> Any: ...

    def stored_trait_values(self, field: str, hint: str | None) -> list[tuple[str, str | None]]:
        """Distinct (observed text, hint text) of a field over stored, observed traits."""
        hint_sql = "h.observed" if hint else "NULL"
        join = (f"LEFT JOIN (SELECT profile_id, coalesce(raw_value, value) ->> '$' AS observed FROM profile_traits "
                f"WHERE key = {q(hint)}) h USING (profile_id)") if hint else ""
        return [tuple(r) for r in self.cursor().execute(f"""
            SELECT DISTINCT coalesce(t.raw_value, t.value) ->> '$', {hint_sql}
            FROM profile_traits t {join}
            WHERE t.key = ? AND t.origin <> 'imputed'""", [field]).fetchall()]

    def restandardize(self, field: str, hint: str | None, rows: list[tuple[str, str | None, str | None, str]],
                      now: datetime) -> dict[str, Any]:
        """Apply (observed, hint, value, status) to stored traits of ``field``.
        Returns counts and the profiles whose traits changed."""
        table = pa.table({
            "observed": pa.array([r[0] for r in rows], pa.string()), "hint": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.string()), "status": pa.array([r[3] for r in rows], pa.string()),
        })
        hint_join = (f"LEFT JOIN (SELECT profile_id, coalesce(raw_value, value) ->> '$' AS observed FROM profile_traits "
                     f"WHERE key = {q(hint)}) h USING (profile_id)") if hint else ""
        hint_sql = "h.observed" if hint else "NULL"
        with self._transaction() as con:
            con.register("_restd", table)
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _restd_rows AS
                SELECT t.profile_id, coalesce(t.raw_value, t.value) AS observed_json, s.value, s.status
                FROM profile_traits t {hint_join}
                JOIN _restd s ON s.observed = coalesce(t.raw_value, t.value) ->> '$'
                             AND s.hint IS NOT DISTINCT FROM {hint_sql}
                WHERE t.key = {q(field)} AND t.origin <> 'imputed'""")
            con.unregister("_restd")
            changed = [r[0] for r in con.execute(f"""
                SELECT r.profile_id FROM _restd_rows r JOIN profile_traits t
                  ON t.profile_id = r.profile_id AND t.key = {q(field)}
                WHERE r.status = 'missing'
                   OR t.value IS DISTINCT FROM (CASE WHEN r.status = 'standardized' THEN to_json(r.value) ELSE r.observed_json END)
                   OR t.origin IS DISTINCT FROM r.status""").fetchall()]
            counts = dict(con.execute("SELECT status, count(*) FROM _restd_rows GROUP BY status").fetchall())
            con.execute(f"""DELETE FROM profile_traits WHERE key = {q(field)}
                            AND profile_id IN (SELECT profile_id FROM _restd_rows WHERE status = 'missing')""")
            con.execute(f"""
                UPDATE profile_traits SET
                    value = CASE WHEN r.status = 'standardized' THEN to_json(r.value) ELSE r.observed_json END,
                    raw_value = CASE WHEN r.status = 'standardized' THEN r.observed_json END,
                    origin = r.status
                FROM _restd_rows r
                WHERE profile_traits.profile_id = r.profile_id AND profile_traits.key = {q(field)}
                  AND r.status <> 'missing'""")
            if changed:
                self._touch(con, changed, now)
        return {"field": field, "values": len(rows), "records": counts, "changed_profiles": changed}

    @staticmethod
    def _touch(con: Any, profile_ids: list[str], now: datetime) -> None:
        con.register("_touched", pa.table({"profile_id": pa.array(sorted(set(profile_ids)), pa.string())}))
        con.execute("UPDATE profiles SET updated_at = ? WHERE profile_id IN (SELECT profile_id FROM _touched)", [now])
        con.unregister("_touched")

    def recompute_revenue(self, reporting: str, rates: dict[str, float], now: datetime,
                          order_event: str) -> dict[str, Any]:
        """Revenue in the reporting currency, for every stored event and profile
        (a profile's revenue: the sum over its ``order_event`` events)."""
        table = pa.table({"currency": pa.array(list(rates), pa.string()), "rate": pa.array(list(rates.values()), pa.float64())})
        with self._transaction() as con:
            con.register("_rates_now", table)
            con.execute(f"""
                UPDATE events SET revenue_reporting = CASE
                    WHEN events.currency IS NULL OR events.currency = {q(reporting)} THEN events.revenue
                    ELSE events.revenue * (SELECT rate FROM _rates_now r WHERE r.currency = events.currency) END
                WHERE revenue IS NOT NULL""")
            con.unregister("_rates_now")
            changed = [r[0] for r in con.execute("""
                WITH sums AS (
                    SELECT coalesce(rd.to_profile, e.profile_id) AS profile_id,
                           coalesce(sum(e.revenue_reporting), 0) AS revenue
                    FROM events e LEFT JOIN profile_redirects rd ON rd.from_profile = e.profile_id
                    WHERE e.type = 'track' AND e.event = $order
                    GROUP BY ALL)
                SELECT p.profile_id FROM profiles p JOIN sums s USING (profile_id)
                WHERE abs(p.revenue - s.revenue) > 1e-9""", {"order": order_event}).fetchall()]
            con.execute("""
                UPDATE profiles SET revenue = s.revenue, updated_at = $now
                FROM (SELECT coalesce(rd.to_profile, e.profile_id) AS profile_id,
                             coalesce(sum(e.revenue_reporting), 0) AS revenue
                      FROM events e LEFT JOIN profile_redirects rd ON rd.from_profile = e.profile_id
                      WHERE e.type = 'track' AND e.event = $order GROUP BY ALL) s
                WHERE profiles.profile_id = s.profile_id AND abs(profiles.revenue - s.revenue) > 1e-9""",
                        {"now": now, "order": order_event})
        return {"changed_profiles": changed}

    # -- missing values -----------------------------------------------------------
    def observed_values(self, field: str) -> pa.Table:
        return self.cursor().sql(
            "SELECT value, value_type FROM trait_values WHERE field = $f AND origin <> 'imputed' AND value IS NOT NULL",
            params={"f": field}).to_arrow_table()

    def missing_with(self, field: str, source: str) -> list[tuple[str, str]]:
        """(profile, the source field's value) for profiles that lack ``field`` but have ``source``."""
        return [tuple(r) for r in self.cursor().execute("""
            SELECT s.profile_id, s.value FROM trait_values s
            WHERE s.field = ? AND s.value IS NOT NULL AND s.origin <> 'imputed'
              AND NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = s.profile_id AND t.key = ?
                              AND t.origin <> 'imputed')""", [source, field]).fetchall()]

    def impute(self, field: str, policy: str, constant: Any, derived: list[tuple[str, Any]] | None,
               now: datetime) -> int:
        """Replace the field's imputed values: ``constant`` for every profile
        without an observed value, or ``derived`` (profile, value) pairs."""
        import orjson

        with self._transaction() as con:
            removed = con.execute("DELETE FROM profile_traits WHERE key = ? AND origin = 'imputed' RETURNING profile_id",
                                  [field]).fetchall()
            source = f"imputed:{policy}"
            if derived is None:
                n = con.execute("""
                    INSERT INTO profile_traits BY NAME
                    SELECT p.profile_id, ? AS key, ?::JSON AS value, ?::TIMESTAMPTZ AS observed_at, ? AS source,
                           NULL AS message_id, NULL AS raw_value, 'imputed' AS origin
                    FROM profiles p WHERE NOT EXISTS (SELECT 1 FROM profile_traits t
                                                      WHERE t.profile_id = p.profile_id AND t.key = ?)
                    RETURNING profile_id""", [field, orjson.dumps(constant).decode(), now, source, field]).fetchall()
            else:
                con.register("_derived", pa.table({
                    "profile_id": pa.array([d[0] for d in derived], pa.string()),
                    "value": pa.array([orjson.dumps(d[1]).decode() for d in derived], pa.string()),
                }))
                n = con.execute("""
                    INSERT INTO profile_traits BY NAME
                    SELECT d.profile_id, ? AS key, d.value::JSON AS value, ?::TIMESTAMPTZ AS observed_at, ? AS source,
                           NULL AS message_id, NULL AS raw_value, 'imputed' AS origin
                    FROM _derived d JOIN profiles p USING (profile_id)
                    WHERE NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = d.profile_id AND t.key = ?)
                    RETURNING profile_id""", [field, now, source, field]).fetchall()
                con.unregister("_derived")
            if n or removed:
                self._touch(con, [r[0] for r in n + removed], now)
        return len(n)
