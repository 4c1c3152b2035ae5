"""Ibis expression -> SQL text for one dialect, cached per expression.

Expressions are immutable and compare by structure, so the same rule built
twice compiles once: the request path re-judges realtime segments every
second with the same handful of expressions."""

from __future__ import annotations

import threading
from typing import Any


class SqlCompiler:
    def __init__(self, dialect: str, max_entries: int = 4096):
        self.dialect = dialect
        self._cache: dict[Any, str] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def __call__(self, expr: Any) -> str:
        key = expr.op()
        with self._lock:
            sql = self._cache.get(key)
        if sql is None:
            import ibis

            sql = str(ibis.to_sql(expr, dialect=self.dialect))
            with self._lock:
                if len(self._cache) >= self._max:
                    self._cache.clear()  # rules change rarely; a full cache means churn, start over
                self._cache[key] = sql
        return sql
