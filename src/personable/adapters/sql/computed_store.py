"""Computed traits (RFM, lifecycle, clusters, scores) with their transitions:
``ComputedTraits`` on any SQL store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from .quality_staging import q
from .session import text_param
from .store_base import SqlStoreBase


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _finite(table: pa.Table) -> pa.Table:
    """NaN and infinities become "no value": JSON has no such numbers, and one
    in a profile's document would make the profile unreadable (a degenerate
    model fit scores NaN)."""
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if pa.types.is_floating(field.type):
            column = table.column(i)
            table = table.set_column(i, field, pc.if_else(pc.is_finite(column), column, None))
    return table


class ComputedStore(SqlStoreBase):
    def write_computed(self, keys: list[str], table: pa.Table, now: datetime,
                       history_keys: tuple[str, ...] = ()) -> list[str]:
        """Replace the computed traits ``keys`` for every profile with ``table``
        (profile_id + one column per key); for ``history_keys`` each change is
        recorded as a transition with its time. Returns the profiles that changed."""
        with self._writing() as db:
            db.put("_computed_new", _finite(table))
            unpivot = " UNION ALL ".join(
                f"SELECT profile_id, {q(k)} AS key, {db.to_json(ident(k))} AS value FROM _computed_new "
                f"WHERE {ident(k)} IS NOT NULL" for k in keys)
            db.temp("_computed_rows", unpivot)
            names = ", ".join(q(k) for k in keys)
            # JSON compares by its text: DuckDB's JSON has no equality of its own.
            changed = [r[0] for r in db.rows(f"""
                SELECT DISTINCT coalesce(n.profile_id, o.profile_id) FROM _computed_rows n
                FULL OUTER JOIN (SELECT * FROM computed_traits WHERE key IN ({names})) o
                  ON o.profile_id = n.profile_id AND o.key = n.key
                WHERE CAST(n.value AS TEXT) IS DISTINCT FROM CAST(o.value AS TEXT)""")]
            if history_keys:
                tracked = ", ".join(q(k) for k in history_keys)
                db.temp("_computed_moves", f"""
                    SELECT coalesce(n.profile_id, o.profile_id) AS profile_id, coalesce(n.key, o.key) AS key,
                           n.value AS new_value
                    FROM (SELECT * FROM _computed_rows WHERE key IN ({tracked})) n
                    FULL OUTER JOIN (SELECT * FROM computed_traits WHERE key IN ({tracked})) o
                      ON o.profile_id = n.profile_id AND o.key = n.key
                    WHERE CAST(n.value AS TEXT) IS DISTINCT FROM CAST(o.value AS TEXT)""")
                db.execute("""UPDATE computed_history SET until = ? FROM _computed_moves m
                              WHERE computed_history.profile_id = m.profile_id AND computed_history.key = m.key
                                AND computed_history.until IS NULL""", [now])
                db.execute("""INSERT INTO computed_history (profile_id, key, value, since, until)
                              SELECT profile_id, key, new_value, ?, NULL FROM _computed_moves
                              WHERE new_value IS NOT NULL""", [now])
            db.execute(f"DELETE FROM computed_traits WHERE key IN ({names})")
            db.execute("""INSERT INTO computed_traits (profile_id, key, value, computed_at)
                          SELECT profile_id, key, value, ? FROM _computed_rows""", [now])
            if changed:
                db.put("_computed_changed", pa.table({"profile_id": pa.array(changed, pa.string())}))
                db.execute("UPDATE profiles SET updated_at = ? "
                           "WHERE profile_id IN (SELECT profile_id FROM _computed_changed)", [now])
        return changed

    def computed_history(self, profile_id: str, key: str | None = None) -> list[dict[str, Any]]:
        rows = self._session().rows(f"""
            SELECT key, value, since, until FROM computed_history
            WHERE profile_id = ? AND ({text_param()} IS NULL OR key = ?) ORDER BY key, since""",
                                    [profile_id, key, key])
        return [{"key": k, "value": orjson.loads(v) if v else None, "since": s.isoformat(),
                 "until": u.isoformat() if u else None} for k, v, s, u in rows]

    def computed_distribution(self, key: str) -> list[dict[str, Any]]:
        db = self._session()
        rows = db.rows(f"""SELECT {db.json_text('value')} AS v, count(*) FROM computed_traits WHERE key = ?
                           GROUP BY 1 ORDER BY 2 DESC""", [key])
        return [{"value": v, "profiles": n} for v, n in rows]
