"""A connection as the shared SQL sees it, whatever the backend.

The stores' shared code (``adapters/sql/*_store.py``, ``write_batch.py``) is
written once in the SQL that DuckDB and PostgreSQL both read, with ``?``
placeholders; a backend's session runs it and supplies the few idioms that
differ (a list parameter, a JSON value's text, JSON aggregation). JSON values
always arrive as their text, on every backend, so the shared code decodes
them one way.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import pyarrow as pa

from ...errors import StoreError


class SqlSession:
    JSON = "JSON"   # the backend's JSON type
    DRIVER_ERRORS: tuple[type[BaseException], ...] = ()   # what the backend's driver raises

    @contextmanager
    def refused(self, sql: str) -> Iterator[None]:
        """A driver's error as the project's StoreError, with the statement attached
        (an error mid-transaction still rolls the whole transaction back)."""
        try:
            yield
        except self.DRIVER_ERRORS as exc:
            raise StoreError(f"the store refused a statement: {exc}".strip(), sql=sql[:2000]) from exc

    # -- statements -------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        raise NotImplementedError

    def put(self, name: str, table: pa.Table) -> None:
        """A temporary table ``name`` holding ``table`` (replacing one of that name)."""
        raise NotImplementedError

    def temp(self, name: str, select_sql: str, params: Any = None) -> None:
        """A temporary table ``name`` holding the rows of ``select_sql`` (replacing
        one of that name); ``params`` only where the backend's own SQL asks for them."""
        raise NotImplementedError

    # -- idioms --------------------------------------------------------------------------
    def in_list(self, column: str, values: str = "?") -> str:
        """SQL: ``column`` is one of the values of a text list (one ``?``
        parameter, or the SQL of a list such as ``text_list(...)``)."""
        raise NotImplementedError

    def lists_overlap(self, column: str, values: str = "?") -> str:
        """SQL: the text-array ``column`` shares a value with a text list parameter."""
        raise NotImplementedError

    def matches(self, expr: str, pattern: str = "?") -> str:
        """SQL: ``expr`` as text matches a regular expression (one ``?`` parameter)."""
        raise NotImplementedError

    def json_text(self, expr: str) -> str:
        """SQL: the text of a scalar JSON value (a string without its quotes)."""
        raise NotImplementedError

    def json_field_text(self, expr: str, field: str) -> str:
        """SQL: the text of the top-level ``field`` of a JSON object."""
        raise NotImplementedError

    def json_object_at(self, expr: str, *path: str) -> str:
        """SQL: the JSON object at ``path`` inside ``expr``, or NULL when it is not an object."""
        raise NotImplementedError

    def to_json(self, expr: str) -> str:
        """SQL: a value as JSON."""
        raise NotImplementedError

    def json_param(self) -> str:
        """SQL: a ``?`` parameter holding JSON text, typed as the backend's JSON."""
        return f"CAST(? AS {self.JSON})"

    def as_json(self, expr: str) -> str:
        """SQL: JSON text (a string column) as the backend's JSON."""
        return f"CAST({expr} AS {self.JSON})"

    def json_object_agg(self, key: str, value: str) -> str:
        raise NotImplementedError

    def is_object(self, expr: str) -> str:
        """SQL: the JSON value is an object."""
        raise NotImplementedError


def text_list(values: list[str]) -> str:
    """A list of strings as a SQL literal, typed as a text list on every backend
    (for statements that take no parameters, such as CREATE TABLE AS on PostgreSQL)."""
    body = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"CAST(ARRAY[{body}] AS TEXT[])"


def text_param(placeholder: str = "?") -> str:
    """A parameter typed as text: ``CAST(? AS TEXT) IS NULL`` works where a bare
    ``? IS NULL`` leaves PostgreSQL unable to type the parameter."""
    return f"CAST({placeholder} AS TEXT)"
