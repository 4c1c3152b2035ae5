"""The embedded default: one DuckDB file holds the event log, the identity graph
and profiles. It implements both the OfflineStore and the OnlineStore ports."""

from .store import DuckDBStore

__all__ = ["DuckDBStore"]
