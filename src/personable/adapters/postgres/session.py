"""PostgreSQL's side of the shared SQL (``adapters/sql/session.py``)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import psycopg
import pyarrow as pa

from ..sql.quality_staging import q
from ...errors import StoreError
from ..sql.session import SqlSession

_PG_TYPES = {
    pa.string(): "TEXT", pa.large_string(): "TEXT", pa.int64(): "BIGINT", pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE PRECISION", pa.bool_(): "BOOLEAN",
}


def pg_type(dtype: pa.DataType) -> str:
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ"
    if pa.types.is_list(dtype):
        return pg_type(dtype.value_type) + "[]"
    if dtype in _PG_TYPES:
        return _PG_TYPES[dtype]
    raise TypeError(f"no PostgreSQL type for Arrow {dtype}")


def pg_params(sql: str) -> str:
    """``?`` placeholders (the shared SQL's) as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


def copy_rows(cur: Any, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def json_as_text(con: Any) -> None:
    """JSON and JSONB values arrive as their text, as they do from DuckDB."""
    from psycopg.types.string import TextLoader

    con.adapters.register_loader("jsonb", TextLoader)
    con.adapters.register_loader("json", TextLoader)


class PostgresSession(SqlSession):
    DRIVER_ERRORS = (psycopg.Error,)
    JSON = "JSONB"

    def __init__(self, con: Any):
        self.con = con

    def _in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.con.info.transaction_status == TransactionStatus.INTRANS)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.refused(sql):
            if params is None:
                self.con.execute(sql)
            else:
                self.con.execute(pg_params(sql), list(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.refused(sql):
            with self.con.cursor() as cur:
                cur.executemany(pg_params(sql), [list(r) for r in rows])

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.refused(sql):
            cur = self.con.execute(sql) if params is None else self.con.execute(pg_params(sql), list(params))
            return list(cur.fetchall()) if cur.description else []

    def dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self.refused(sql):
            cur = self.con.execute(sql) if params is None else self.con.execute(pg_params(sql), list(params))
            cols = [d.name for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self.refused(sql):
            cur = self.con.execute(sql) if params is None else self.con.execute(pg_params(sql), list(params))
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
            return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}) if rows else \
                pa.table({n: pa.array([], pa.string()) for n in names})

    def put(self, name: str, table: pa.Table) -> None:
        try:
            cols = ", ".join(f"{f.name} {pg_type(f.type)}" for f in table.schema)
        except TypeError as exc:
            raise StoreError(f"cannot stage {name} in PostgreSQL: {exc}") from exc
        # Inside a transaction the table goes with it; outside, it lives for the connection.
        scope = " ON COMMIT DROP" if self._in_transaction() else ""
        with self.refused(f"CREATE TEMP TABLE {name} ({cols}) / COPY"):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
            self.con.execute(f"CREATE TEMP TABLE {name} ({cols}){scope}")
            if table.num_rows:
                with self.con.cursor() as cur:
                    copy_rows(cur, name, table.column_names, zip(*(c.to_pylist() for c in table.columns)))

    def temp(self, name: str, select_sql: str, params: Any = None) -> None:
        if params is not None:   # CREATE TABLE AS takes no bound parameters in PostgreSQL
            raise TypeError("PostgreSQL temp tables take their values in the SQL")
        with self.refused(select_sql):
            scope = " ON COMMIT DROP" if self._in_transaction() else ""
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
            self.con.execute(f"CREATE TEMP TABLE {name}{scope} AS {select_sql}")

    def in_list(self, column: str, values: str = "?") -> str:
        return f"{column} = ANY(CAST({values} AS TEXT[]))"

    def lists_overlap(self, column: str, values: str = "?") -> str:
        return f"{column} && CAST({values} AS TEXT[])"

    def matches(self, expr: str, pattern: str = "?") -> str:
        return f"CAST({expr} AS TEXT) ~ {pattern}"

    def json_text(self, expr: str) -> str:
        return f"({expr} #>> '{{}}')"

    def json_field_text(self, expr: str, field: str) -> str:
        return f"({expr} ->> {q(field)})"

    def json_object_at(self, expr: str, *path: str) -> str:
        p = q("{" + ",".join('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in path) + "}")
        return f"CASE WHEN jsonb_typeof({expr} #> {p}) = 'object' THEN {expr} #> {p} END"

    def to_json(self, expr: str) -> str:
        return f"to_jsonb({expr})"

    def json_object_agg(self, key: str, value: str) -> str:
        return f"jsonb_object_agg({key}, {value})"

    def is_object(self, expr: str) -> str:
        return f"(jsonb_typeof({expr}) = 'object')"
