"""Upserts rendered from the domain's combine rules.

``INSERT ... ON CONFLICT (key) DO UPDATE`` reads the same in DuckDB and
PostgreSQL, so one renderer serves every SQL backend: the domain says how a
stored value and a new one combine (``profiles.aggregates.Combine``, the
trait policies' ``REPLACES``); this turns it into the SET list and WHERE
clause.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from ...profiles.aggregates import Combine


def combined(table: str, column: str, rule: Combine) -> str:
    """SQL for the value a stored row of ``table`` keeps once a new row (``excluded``) meets it."""
    old, new = f"{table}.{column}", f"excluded.{column}"
    if rule.how == "min":
        return f"least({old}, {new})"
    if rule.how == "max":
        return f"greatest({old}, {new})"
    if rule.how == "sum":
        return f"{old} + {new}"
    if rule.how == "latest":
        return new
    at_old, at_new = f"{table}.{rule.at}", f"excluded.{rule.at}"
    return f"CASE WHEN {at_old} IS NULL OR {at_new} >= {at_old} THEN coalesce({new}, {old}) ELSE {old} END"


def upsert(table: str, columns: Iterable[str], key: Iterable[str], select_sql: str,
           set_sql: Mapping[str, str] | None = None, where: str | None = None) -> str:
    """INSERT the rows of ``select_sql`` (with exactly ``columns``) into ``table``;
    on a key conflict apply ``set_sql`` (column -> expression), when ``where``
    holds. Without ``set_sql`` every non-key column takes the new value."""
    columns, key = list(columns), list(key)
    sets = dict(set_sql) if set_sql is not None else {c: f"excluded.{c}" for c in columns if c not in key}
    col_list = ", ".join(columns)
    action = "DO NOTHING" if not sets else "DO UPDATE SET " + ", ".join(f"{c} = {v}" for c, v in sets.items())
    condition = f" WHERE {where}" if where and sets else ""
    return (f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM ({select_sql}) AS _rows "
            f"ON CONFLICT ({', '.join(key)}) {action}{condition}")


def combine_upsert(table: str, rules: Mapping[str, Combine], key: str, select_sql: str) -> str:
    """An upsert whose SET list follows combine rules (the key is not updated)."""
    return upsert(table, rules, [key], select_sql,
                  {c: combined(table, c, r) for c, r in rules.items() if c != key})
