"""DuckDB's side of the shared SQL (``adapters/sql/session.py``)."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Iterator, Sequence

import duckdb
import pyarrow as pa

from ..sql.session import SqlSession


class DuckDBSession(SqlSession):
    DRIVER_ERRORS = (duckdb.Error,)
    def __init__(self, con: Any, gate: Any = None):
        """``con``: a connection (a write transaction's), or a function giving this thread's connection
        when each statement runs -- behind ``gate``, so a compaction never closes it mid-statement."""
        self._con, self._gate = con, gate

    @property
    def con(self) -> Any:
        return self._con() if callable(self._con) else self._con

    @contextmanager
    def _using(self, sql: str) -> Iterator[Any]:
        with self._gate.shared() if self._gate is not None else nullcontext(), self.refused(sql):
            yield self.con

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._using(sql) as con:
            con.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._using(sql) as con:
            con.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._using(sql) as con:
            return list(con.execute(sql, params).fetchall())

    def dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._using(sql) as con:
            cur = con.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self._using(sql) as con:
            return con.sql(sql, params=list(params) if params is not None else None).to_arrow_table()

    def put(self, name: str, table: pa.Table) -> None:
        # Registered Arrow is read by reference; the copy keeps it valid after unregister.
        with self._using(name) as con:
            con.register("_arrow_in", table)
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _arrow_in")
            finally:
                con.unregister("_arrow_in")

    def temp(self, name: str, select_sql: str, params: Any = None) -> None:
        with self._using(select_sql) as con:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select_sql}", params)

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
