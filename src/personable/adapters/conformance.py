"""Each adapter against the ports it serves, checked by mypy (``make typecheck``
and tests/test_architecture.py), never run. An adapter that drifts from its
port -- a missing method, a changed signature -- fails the type check here.

The same for the two sides of the CLI: the Engine and the HTTP client are
both a ``PersonableAPI`` (personable.api)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api import PersonableAPI
    from ..client import RemoteEngine
    from ..compose import OfflineBackend
    from ..engine import Engine
    from ..ports import EventLog, OnlineStore, ProfileReads
    from .duckdb.store import DuckDBStore
    from .filelog import FileLog
    from .postgres.store import PostgresStore
    from .redis_online import RedisOnlineStore
    from .sqlite_online import SQLiteOnlineStore

    def duckdb_offline(store: DuckDBStore) -> OfflineBackend:
        return store

    def postgres_offline(store: PostgresStore) -> OfflineBackend:
        return store

    def duckdb_online(store: DuckDBStore) -> ProfileReads:
        return store

    def sqlite_online(store: SQLiteOnlineStore) -> OnlineStore:
        return store

    def redis_online(store: RedisOnlineStore) -> OnlineStore:
        return store

    def file_log(log: FileLog) -> EventLog:
        return log

    def local_project(engine: Engine) -> PersonableAPI:
        return engine

    def remote_project(client: RemoteEngine) -> PersonableAPI:
        return client
