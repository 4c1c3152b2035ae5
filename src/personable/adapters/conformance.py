"""Each adapter against the ports it serves, checked by mypy (``make typecheck``
and tests/test_architecture.py), never run. An adapter that drifts from its
port -- a missing method, a changed signature -- fails the type check here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..compose import OfflineBackend
    from ..ports import EventLog, OnlineStore, ProfileReads
    from .duckdb.store import DuckDBStore
    from .filelog import FileLog
    from .redis_online import RedisOnlineStore
    from .sqlite_online import SQLiteOnlineStore

    def duckdb_offline(store: DuckDBStore) -> OfflineBackend:
        return store

    def duckdb_online(store: DuckDBStore) -> ProfileReads:
        return store

    def sqlite_online(store: SQLiteOnlineStore) -> OnlineStore:
        return store

    def redis_online(store: RedisOnlineStore) -> OnlineStore:
        return store

    def file_log(log: FileLog) -> EventLog:
        return log
