"""A connection as the shared SQL sees it, whatever the backend.

The stores' shared code (``adapters/sql/*_store.py``, ``write_batch.py``) is
written once in the SQL that DuckDB and PostgreSQL both read, with ``?``
placeholders; a backend's session runs it and supplies the few idioms that
differ (a list parameter, a JSON value's text, JSON aggregation). JSON values
always arrive as their text, on every backend, so the shared code decodes
them one way.
"""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa


class SqlSession:
    # -- statements -------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        raise NotImplementedError

    def put(self, name: str, table: pa.Table) -> None:
        """A temporary table ``name`` holding ``table`` (replacing one of that name)."""
        raise NotImplementedError

    def temp(self, name: str, select_sql: str) -> None:
        """A temporary table ``name`` holding the rows of ``select_sql`` (replacing one of that name)."""
        raise NotImplementedError

    # -- idioms --------------------------------------------------------------------------
    def in_list(self, column: str) -> str:
        """SQL: ``column`` is one of the values of a list given as one ``?`` parameter."""
        raise NotImplementedError

    def json_text(self, expr: str) -> str:
        """SQL: the text of a scalar JSON value (a string without its quotes)."""
        raise NotImplementedError

    def json_field_text(self, expr: str, field: str) -> str:
        """SQL: the text of the top-level ``field`` of a JSON object."""
        raise NotImplementedError

    def to_json(self, expr: str) -> str:
        """SQL: a value as JSON."""
        raise NotImplementedError

    def json_param(self) -> str:
        """SQL: a ``?`` parameter holding JSON text, typed as the backend's JSON."""
        raise NotImplementedError

    def json_object_agg(self, key: str, value: str) -> str:
        raise NotImplementedError

    def is_object(self, expr: str) -> str:
        """SQL: the JSON value is an object."""
        raise NotImplementedError


def text_param(placeholder: str = "?") -> str:
    """A parameter typed as text: ``CAST(? AS TEXT) IS NULL`` works where a bare
    ``? IS NULL`` leaves PostgreSQL unable to type the parameter."""
    return f"CAST({placeholder} AS TEXT)"
