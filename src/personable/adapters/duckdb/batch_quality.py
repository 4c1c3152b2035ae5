"""DuckDB's hooks for the write path's quality staging (``adapters/sql/quality_staging.py``)."""

from __future__ import annotations

from typing import Any

from ..sql.quality_staging import QualityStaging, q
from .parse_sql import json_path


class DuckDBQualityHooks(QualityStaging):
    con: Any

    def _field_rows_sql(self, fields: list[tuple[str, str | None]], table: str, valid_only: bool) -> str:
        cond = "type = 'identify' AND json_type(traits) = 'OBJECT'" + (" AND len(problems) = 0" if valid_only else "")
        parts = []
        for name, hint in fields:
            path = q(json_path(name))
            hint_sql = f"traits ->> {q(json_path(hint))}" if hint else "NULL"
            parts.append(f"SELECT seq, {q(name)} AS field, traits ->> {path} AS raw, {hint_sql} AS hint FROM {table} "
                         f"WHERE {cond} AND json_type(traits, {path}) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')")
        return " UNION ALL ".join(parts)

    def _append_rule_problems(self, problems_sql: str) -> None:
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rule_problems AS
            SELECT seq, list({{'path': path, 'problem': problem}} ORDER BY path, problem) AS problems
            FROM ({problems_sql}) p GROUP BY seq""")
        self.con.execute("""UPDATE _parsed SET problems = list_concat(_parsed.problems, r.problems)
                            FROM _rule_problems r WHERE _parsed.seq = r.seq""")
