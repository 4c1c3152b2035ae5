"""The item catalog on DuckDB. Mixin for DuckDBStore."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Iterable

import pyarrow as pa

ITEM_COLUMNS = ("item_id", "name", "category", "brand", "price", "description", "in_stock", "attributes")


class CatalogStore:
    _writer: Any

    def _transaction(self) -> AbstractContextManager[Any]: ...

    def cursor(self) -> Any: ...

    def upsert_items(self, table: pa.Table, source: str, now: datetime, only_new: bool = False) -> int:
        """Insert or replace catalog rows (``ITEM_COLUMNS``); with ``only_new``,
        keep rows already there (items learned from events never overwrite the
        catalog's own). Returns the rows written."""
        with self._transaction() as con:
            con.register("_items_in", table)
            try:
                before = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
                conflict = "DO NOTHING" if only_new else """DO UPDATE SET name = excluded.name,
                    category = excluded.category, brand = excluded.brand, price = excluded.price,
                    description = excluded.description, in_stock = excluded.in_stock,
                    attributes = excluded.attributes, source = excluded.source, updated_at = excluded.updated_at"""
                con.execute(f"""
                    INSERT INTO items SELECT item_id, name, category, brand, price, description,
                                             coalesce(in_stock, true), attributes, $source, $now
                    FROM (SELECT *, row_number() OVER (PARTITION BY item_id) AS n FROM _items_in) WHERE n = 1
                    ON CONFLICT (item_id) {conflict}""", {"source": source, "now": now}).fetchall()
                written = con.execute("SELECT count(*) FROM items").fetchall()[0][0] - before
                return int(written if only_new else table.num_rows)
            finally:
                con.unregister("_items_in")

    # -- precomputed recommendations (when this store also serves online reads) --------------------
    def put_recommendations(self, rows: Iterable[tuple[str, bytes]], replace_all: bool = False) -> None:
        """``replace_all``: rows go to a staging table in chunks (the write lock held
        per chunk only, so the write path goes on while lists are ranked), then one
        transaction swaps them in: readers see the old lists until then, never none."""
        if not replace_all:
            with self._transaction() as con:
                con.executemany("INSERT OR REPLACE INTO recommendations VALUES (?, ?)",
                                [(pid, payload.decode()) for pid, payload in rows])
            return
        with self._write_lock:
            self._writer.execute("CREATE OR REPLACE TABLE recommendations_next AS FROM recommendations LIMIT 0")
        part: list[tuple[str, str]] = []
        for pid, payload in rows:
            part.append((pid, payload.decode()))
            if len(part) >= 2000:
                with self._write_lock:
                    self._writer.executemany("INSERT OR REPLACE INTO recommendations_next VALUES (?, ?)", part)
                part = []
        with self._transaction() as con:
            if part:
                con.executemany("INSERT OR REPLACE INTO recommendations_next VALUES (?, ?)", part)
            con.execute("DELETE FROM recommendations")
            con.execute("INSERT INTO recommendations SELECT * FROM recommendations_next")
            con.execute("DROP TABLE recommendations_next")

    def recommendations(self, profile_id: str) -> bytes | None:
        rows = self.cursor().execute("SELECT payload FROM recommendations WHERE profile_id = ?", [profile_id]).fetchall()
        row = rows[0] if rows else None
        return row[0].encode() if row else None
