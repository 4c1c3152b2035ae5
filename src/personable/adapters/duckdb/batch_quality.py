"""Data quality inside the write path: standardized trait values and record rules.

The domain (``personable.quality``) decides what a value's standard form is,
in Python, over the *distinct* values of a batch; this mixin moves those
values in and out of SQL and applies the decisions to every row:

1. ``trait_values`` lists distinct (field, observed text, hint) per batch,
2. ``set_standardized`` takes back the standard form (or a problem) of each,
3. ``check_rules`` builds ``_tv(seq, field, raw, value, status)`` -- one row
   per record and configured field -- and quarantines records whose values
   cannot be read or break a record rule (the rule is named in the problem),
4. ``_update_traits`` (in ``batch.py``) stores the standard form, keeping the
   observed value beside it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .parse_sql import json_path, q

_TV_EMPTY = """CREATE OR REPLACE TEMP TABLE _tv (seq BIGINT, field VARCHAR, raw VARCHAR, value VARCHAR,
               status VARCHAR, problem VARCHAR, quarantine BOOLEAN)"""


class QualityStaging:
    compile: Any   # the store's SqlCompiler
    con: Any
    _quality_fields: list[tuple[str, str | None]]

    def _field_rows_sql(self, fields: list[tuple[str, str | None]], table: str, valid_only: bool) -> str:
        """One row per (record, configured field) with a scalar value observed."""
        cond = "type = 'identify' AND json_type(traits) = 'OBJECT'" + (" AND len(problems) = 0" if valid_only else "")
        parts = []
        for name, hint in fields:
            path = q(json_path(name))
            hint_sql = f"traits ->> {q(json_path(hint))}" if hint else "NULL"
            parts.append(f"SELECT seq, {q(name)} AS field, traits ->> {path} AS raw, {hint_sql} AS hint FROM {table} "
                         f"WHERE {cond} AND json_type(traits, {path}) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')")
        return " UNION ALL ".join(parts)

    def trait_values(self, fields: list[tuple[str, str | None]], table: str = "_parsed") -> list[tuple[str, str, str | None]]:
        """Distinct (field, observed text, hint text) among the batch's identify traits."""
        self._quality_fields = fields
        self._quality_source = table
        if not fields:
            return []
        sql = self._field_rows_sql(fields, table, valid_only=(table == "_parsed"))
        return [tuple(r) for r in self.con.execute(f"SELECT DISTINCT field, raw, hint FROM ({sql})").fetchall()]

    def set_standardized(self, rows: list[tuple[str, str, str | None, str | None, str | None, str, bool]]) -> None:
        """Rows of (field, raw, hint, value, problem, status, quarantine): status is
        observed | standardized | missing | invalid."""
        cols = list(zip(*rows)) if rows else [[]] * 7
        self.con.register("_std_arrow", pa.table({
            "field": pa.array(cols[0], pa.string()), "raw": pa.array(cols[1], pa.string()),
            "hint": pa.array(cols[2], pa.string()), "value": pa.array(cols[3], pa.string()),
            "problem": pa.array(cols[4], pa.string()), "status": pa.array(cols[5], pa.string()),
            "quarantine": pa.array(cols[6], pa.bool_()),
        }))
        fields = getattr(self, "_quality_fields", [])
        if not fields:
            self.con.execute(_TV_EMPTY)
        else:
            table = getattr(self, "_quality_source", "_parsed")
            self.con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _tv AS
                SELECT r.seq, r.field, r.raw, s.value, s.status, s.problem, s.quarantine
                FROM ({self._field_rows_sql(fields, table, valid_only=(table == "_parsed"))}) r
                JOIN _std_arrow s ON s.field = r.field AND s.raw = r.raw AND s.hint IS NOT DISTINCT FROM r.hint""")
        self.con.unregister("_std_arrow")

    def check_rules(self, violations: Any, quarantine_fields: set[str]) -> None:
        """Quarantine records with an unreadable value or a broken record rule
        (for fields whose ``on_invalid`` is quarantine)."""
        con = self.con
        rule_part = ""
        if violations is not None and quarantine_fields:
            violations_sql = self.compile(violations)
            names = ", ".join(q(f) for f in sorted(quarantine_fields))
            rule_part = f"""UNION ALL SELECT seq, field, problem FROM ({violations_sql}) v WHERE field IN ({names})"""
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rule_problems AS
            SELECT seq, list({{'path': 'traits.' || field, 'problem': problem}} ORDER BY field, problem) AS problems
            FROM (SELECT seq, field, problem FROM _tv WHERE problem IS NOT NULL AND quarantine {rule_part})
            GROUP BY seq""")
        con.execute("""UPDATE _parsed SET problems = list_concat(_parsed.problems, r.problems)
                       FROM _rule_problems r WHERE _parsed.seq = r.seq""")
