"""The item catalog, and precomputed recommendation lists when the offline
store also serves online reads: ``Catalog`` on any SQL store."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import pyarrow as pa

from .session import SqlSession
from .store_base import SqlStoreBase
from .upsert import upsert

ITEM_COLUMNS = ("item_id", "name", "category", "brand", "price", "description", "in_stock", "attributes")
STORED_ITEM_COLUMNS = (*ITEM_COLUMNS, "source", "updated_at")


class CatalogStore(SqlStoreBase):
    def upsert_items(self, table: pa.Table, source: str, now: datetime, only_new: bool = False) -> int:
        """Insert or replace catalog rows (``ITEM_COLUMNS``); with ``only_new``,
        keep rows already there (items learned from events never overwrite the
        catalog's own). Returns the rows written."""
        with self._writing() as db:
            db.put("_items_in", table.select([c for c in ITEM_COLUMNS if c in table.column_names]))
            before = db.rows("SELECT count(*) FROM items")[0][0]
            have = set(table.column_names)

            def col(c: str) -> str:
                if c not in have:
                    return "NULL"
                return db.as_json(c) if c == "attributes" else c
            select = f"""
                SELECT {', '.join(f'{col(c)} AS {c}' for c in ITEM_COLUMNS if c != 'in_stock')},
                       coalesce({col('in_stock')}, true) AS in_stock, ? AS source, ? AS updated_at
                FROM (SELECT *, row_number() OVER (PARTITION BY item_id ORDER BY item_id) AS n FROM _items_in) i
                WHERE n = 1"""
            db.execute(upsert("items", STORED_ITEM_COLUMNS, ["item_id"], select, set_sql={} if only_new else None),
                       [source, now])
            written = db.rows("SELECT count(*) FROM items")[0][0] - before
            return int(written if only_new else table.num_rows)

    def put_recommendations(self, rows: Iterable[tuple[str, bytes]], replace_all: bool = False) -> None:
        """``replace_all``: rows go to a staging table in chunks (the write lock held
        per chunk only, so the write path goes on while lists are ranked), then one
        transaction swaps them in: readers see the old lists until then, never none."""
        def put(db: SqlSession, table: str) -> str:
            return upsert(table, ["profile_id", "payload"], ["profile_id"],
                          f"SELECT ? AS profile_id, {db.json_param()} AS payload")

        if not replace_all:
            with self._writing() as db:
                db.executemany(put(db, "recommendations"), [(pid, payload.decode()) for pid, payload in rows])
            return
        with self._writing() as db:
            db.execute("DROP TABLE IF EXISTS recommendations_next")
            db.execute("CREATE TABLE recommendations_next AS SELECT * FROM recommendations WHERE false")
            db.execute("ALTER TABLE recommendations_next ADD PRIMARY KEY (profile_id)")
        part: list[tuple[str, str]] = []
        for pid, payload in rows:
            part.append((pid, payload.decode()))
            if len(part) >= 2000:
                with self._writing() as db:
                    db.executemany(put(db, "recommendations_next"), part)
                part = []
        with self._writing() as db:
            if part:
                db.executemany(put(db, "recommendations_next"), part)
            db.execute("DELETE FROM recommendations")
            db.execute("INSERT INTO recommendations SELECT * FROM recommendations_next")
            db.execute("DROP TABLE recommendations_next")

    def recommendations(self, profile_id: str) -> bytes | None:
        rows = self._session().rows("SELECT payload FROM recommendations WHERE profile_id = ?", [profile_id])
        return str(rows[0][0]).encode() if rows else None
