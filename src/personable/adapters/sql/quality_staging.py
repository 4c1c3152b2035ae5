"""Data quality inside the write path: standardized trait values and record rules.

The domain (``personable.quality``) decides what a value's standard form is,
in Python, over the *distinct* values of a batch; this mixin of ``SqlBatch``
moves those values in and out of SQL and applies the decisions to every row:

1. ``trait_values`` lists distinct (field, observed text, hint) per batch,
2. ``set_standardized`` takes back the standard form (or a problem) of each,
3. ``check_rules`` builds ``_tv(seq, field, raw, value, status)`` -- one row
   per record and configured field -- and quarantines records whose values
   cannot be read or break a record rule (the rule is named in the problem),
4. ``_update_traits`` (``write_batch.py``) stores the standard form, keeping
   the observed value beside it.

A backend gives two hooks: how to list a JSON object's configured fields per
record, and how to append problems to ``_parsed``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import pyarrow as pa

from .session import SqlSession

TV_COLUMNS = "seq BIGINT, field TEXT, raw TEXT, value TEXT, status TEXT, problem TEXT, quarantine BOOLEAN"


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


class QualityStaging:
    db: SqlSession
    compile: Callable[[Any], str]
    _quality_fields: list[tuple[str, str | None]]
    _quality_source: str

    # -- hooks a backend provides ----------------------------------------------
    def _field_rows_sql(self, fields: list[tuple[str, str | None]], table: str, valid_only: bool) -> str:
        """SELECT (seq, field, raw, hint): one row per (record, configured field)
        with a scalar value observed in an identify's traits."""
        raise NotImplementedError

    def _append_rule_problems(self, problems_sql: str) -> None:
        """Add the problems of ``problems_sql`` (seq, path, problem) to their records in _parsed."""
        raise NotImplementedError

    # -- the batch's connection ---------------------------------------------------
    def _exec(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.db.execute(sql, params)

    def _rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.db.rows(sql, params)

    def _put(self, name: str, table: pa.Table) -> None:
        self.db.put(name, table)

    def _temp(self, name: str, select_sql: str) -> None:
        self.db.temp(name, select_sql)

    def trait_values(self, fields: list[tuple[str, str | None]], table: str = "_parsed") -> list[tuple[str, str, str | None]]:
        """Distinct (field, observed text, hint text) among the batch's identify traits."""
        self._quality_fields = fields
        self._quality_source = table
        if not fields:
            return []
        sql = self._field_rows_sql(fields, table, valid_only=(table == "_parsed"))
        return [(r[0], r[1], r[2]) for r in self._rows(f"SELECT DISTINCT field, raw, hint FROM ({sql}) f")]

    def set_standardized(self, rows: list[tuple[str, str, str | None, str | None, str | None, str, bool]]) -> None:
        """Rows of (field, raw, hint, value, problem, status, quarantine): status is
        observed | standardized | missing | invalid."""
        fields = getattr(self, "_quality_fields", [])
        if not fields:
            self._temp("_tv", f"SELECT * FROM (VALUES (NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT, "
                              f"NULL::TEXT, NULL::BOOLEAN)) AS v(seq, field, raw, value, status, problem, quarantine) "
                              f"WHERE false")
            return
        cols = list(zip(*rows)) if rows else [()] * 7
        self._put("_std", pa.table({
            "field": pa.array(cols[0], pa.string()), "raw": pa.array(cols[1], pa.string()),
            "hint": pa.array(cols[2], pa.string()), "value": pa.array(cols[3], pa.string()),
            "problem": pa.array(cols[4], pa.string()), "status": pa.array(cols[5], pa.string()),
            "quarantine": pa.array(cols[6], pa.bool_()),
        }))
        table = getattr(self, "_quality_source", "_parsed")
        self._temp("_tv", f"""
            SELECT r.seq, r.field, r.raw, s.value, s.status, s.problem, s.quarantine
            FROM ({self._field_rows_sql(fields, table, valid_only=(table == "_parsed"))}) r
            JOIN _std s ON s.field = r.field AND s.raw = r.raw AND s.hint IS NOT DISTINCT FROM r.hint""")

    def check_rules(self, violations: Any, quarantine_fields: set[str]) -> None:
        """Quarantine records with an unreadable value or a broken record rule
        (for fields whose ``on_invalid`` is quarantine)."""
        rule_part = ""
        if violations is not None and quarantine_fields:
            names = ", ".join(q(f) for f in sorted(quarantine_fields))
            rule_part = f"UNION ALL SELECT seq, field, problem FROM ({self.compile(violations)}) v WHERE field IN ({names})"
        self._append_rule_problems(f"""
            SELECT seq, 'traits.' || field AS path, problem
            FROM (SELECT seq, field, problem FROM _tv WHERE problem IS NOT NULL AND quarantine {rule_part}) p""")
