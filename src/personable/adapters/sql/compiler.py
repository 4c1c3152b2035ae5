"""Ibis expression -> SQL text for one dialect, cached per expression.

Expressions are immutable and compare by structure, so the same rule built
twice compiles once: the request path re-judges realtime segments every
second with the same handful of expressions."""

from __future__ import annotations

import threading
from typing import Any


def _postgres_compiler(statements: bool) -> Any:
    """Ibis' PostgreSQL compiler for a store whose JSON columns are JSONB.

    Ibis types our unbound tables' JSON as ``json`` and would call ``json_*``
    functions, which do not take JSONB (the four places Ibis branches on it
    are overridden); and its unwrap of a JSON scalar renders
    as an invalid ``->> VARIADIC`` with the sqlglot in use. Both are fixed here,
    where the dialect is known. ``statements``: the SQL feeds a statement
    (CREATE TABLE AS, INSERT ... SELECT), so JSON results stay JSONB instead of
    being cast to text for fetching."""
    import sqlglot as sg
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.base import NULL, STAR, SQLGlotCompiler
    from ibis.backends.sql.compilers.postgres import PostgresCompiler

    class JsonbCompiler(PostgresCompiler):  # type: ignore[misc]
        def json_typeof(self, op: Any, arg: Any) -> Any:
            return self.f.jsonb_typeof(arg)

        def json_extract_path_text(self, op: Any, arg: Any, *rest: Any) -> Any:
            # An anonymous call is rendered as written (no rewrite into an operator).
            return sge.Anonymous(this="jsonb_extract_path_text",
                                 expressions=[arg, *rest, sge.Var(this="VARIADIC ARRAY[]::TEXT[]")])

        def visit_JSONGetItem(self, op: Any, *, arg: Any, index: Any) -> Any:
            return self.f.jsonb_extract_path(arg, self.cast(index, op.index.dtype.__class__()))

        def visit_ToJSONArray(self, op: Any, *, arg: Any) -> Any:
            return self.if_(self.json_typeof(op, arg).eq(sge.convert("array")),
                            self.f.array(sg.select(STAR).from_(self.f.jsonb_array_elements(arg))), NULL)

        if statements:
            def to_sqlglot(self, expr: Any, *, limit: str | None = None, params: Any = None) -> Any:
                return SQLGlotCompiler.to_sqlglot(self, expr, limit=limit, params=params)

    return JsonbCompiler()


class SqlCompiler:
    """``statements=True``: the SQL is a part of a statement, not a result to
    fetch (matters on PostgreSQL, where fetched JSON is cast to text)."""

    def __init__(self, dialect: str, max_entries: int = 4096, statements: bool = False):
        self.dialect = dialect
        self._cache: dict[Any, str] = {}
        self._max = max_entries
        self._lock = threading.Lock()
        self._postgres = _postgres_compiler(statements) if dialect == "postgres" else None

    def _compile(self, expr: Any) -> str:
        if self._postgres is not None:
            return str(self._postgres.to_sqlglot(expr).sql(dialect="postgres"))
        import ibis

        return str(ibis.to_sql(expr, dialect=self.dialect))

    def __call__(self, expr: Any) -> str:
        key = expr.op()
        with self._lock:
            sql = self._cache.get(key)
        if sql is None:
            sql = self._compile(expr)
            with self._lock:
                if len(self._cache) >= self._max:
                    self._cache.clear()  # rules change rarely; a full cache means churn, start over
                self._cache[key] = sql
        return sql
