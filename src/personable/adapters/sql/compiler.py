"""Ibis expression -> SQL text for one dialect, cached per expression.

Expressions are immutable and compare by structure, so the same rule built
twice compiles once: the request path re-judges realtime segments every
second with the same handful of expressions."""

from __future__ import annotations

import threading
from typing import Any


def _postgres_statement_compiler() -> Any:
    """Ibis' PostgreSQL compiler, minus the cast of JSON results to text that it
    adds for fetching: a statement's SELECT feeding JSONB columns (CREATE TABLE
    AS, INSERT ... SELECT) must keep JSONB."""
    from ibis.backends.sql.compilers.base import SQLGlotCompiler
    from ibis.backends.sql.compilers.postgres import PostgresCompiler

    class StatementCompiler(PostgresCompiler):  # type: ignore[misc]
        def to_sqlglot(self, expr: Any, *, limit: str | None = None, params: Any = None) -> Any:
            return SQLGlotCompiler.to_sqlglot(self, expr, limit=limit, params=params)

    return StatementCompiler()


class SqlCompiler:
    """``statements=True``: the SQL is a part of a statement, not a result to
    fetch (matters on PostgreSQL, where fetched JSON is cast to text)."""

    def __init__(self, dialect: str, max_entries: int = 4096, statements: bool = False):
        self.dialect = dialect
        self._cache: dict[Any, str] = {}
        self._max = max_entries
        self._lock = threading.Lock()
        self._statement_compiler = _postgres_statement_compiler() if statements and dialect == "postgres" else None

    def _compile(self, expr: Any) -> str:
        if self._statement_compiler is not None:
            return str(self._statement_compiler.to_sqlglot(expr).sql(dialect="postgres"))
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
