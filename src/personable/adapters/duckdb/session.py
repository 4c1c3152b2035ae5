"""DuckDB's side of the shared SQL (``adapters/sql/session.py``)."""

from __future__ import annotations

from typing import Any, Sequence

import duckdb
import pyarrow as pa

from ..sql.session import SqlSession


class DuckDBSession(SqlSession):
    DRIVER_ERRORS = (duckdb.Error,)
    def __init__(self, con: Any):
        self.con = con

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.refused(sql):
            self.con.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.refused(sql):
            self.con.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.refused(sql):
            return list(self.con.execute(sql, params).fetchall())

    def dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self.refused(sql):
            cur = self.con.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self.refused(sql):
            return self.con.sql(sql, params=list(params) if params is not None else None).to_arrow_table()

    def put(self, name: str, table: pa.Table) -> None:
        # Registered Arrow is read by reference; the copy keeps it valid after unregister.
        self.con.register("_arrow_in", table)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _arrow_in")
        finally:
            self.con.unregister("_arrow_in")

    def temp(self, name: str, select_sql: str, params: Any = None) -> None:
        with self.refused(select_sql):
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select_sql}", params)

    def in_list(self, column: str, values: str = "?") -> str:
        # A list lets DuckDB look rows up through an index on ``column``.
        return f"list_contains({values}, {column})"

    def lists_overlap(self, column: str, values: str = "?") -> str:
        return f"list_has_any({column}, CAST({values} AS VARCHAR[]))"

    def matches(self, expr: str, pattern: str = "?") -> str:
        return f"regexp_matches(CAST({expr} AS VARCHAR), {pattern})"

    def json_text(self, expr: str) -> str:
        return f"({expr} ->> '$')"

    def json_field_text(self, expr: str, field: str) -> str:
        from .parse_sql import json_path, q

        return f"({expr} ->> {q(json_path(field))})"

    def json_object_at(self, expr: str, *path: str) -> str:
        from .parse_sql import json_path, q

        p = q(json_path(*path))
        return f"CASE WHEN json_type({expr}, {p}) = 'OBJECT' THEN json_extract({expr}, {p}) END"

    def to_json(self, expr: str) -> str:
        return f"to_json({expr})"

    def json_object_agg(self, key: str, value: str) -> str:
        return f"json_group_object({key}, {value})"

    def is_object(self, expr: str) -> str:
        return f"(json_type({expr}) = 'OBJECT')"
