"""What the shared store mixins (``*_store.py`` here) need from a SQL store.

A backend's store gives a session for reads on the calling thread, a session
in a write transaction (serialized with the write path), its Ibis compiler,
and its write-path batch class; the mixins then serve the ports with the SQL
written once."""

from __future__ import annotations

from typing import Any, Callable, ContextManager

from ...ports import PipelineSettings, StagedInput
from .session import SqlSession
from .write_batch import SqlBatch


class SqlStoreBase:
    compile: Callable[[Any], str]

    def _session(self) -> SqlSession:
        """A session on this thread's connection, for reads (each statement sees the latest commit)."""
        raise NotImplementedError

    def _writing(self) -> ContextManager[SqlSession]:
        """A session in a write transaction, serialized with the write path; committed on a clean exit."""
        raise NotImplementedError

    def _batch_on(self, db: SqlSession, staged: StagedInput, settings: PipelineSettings) -> SqlBatch:
        """The write path's batch on a session already in a transaction."""
        raise NotImplementedError

    def _hold_audit(self, db: SqlSession) -> None:
        """Hold other writers of the audit chain off until the transaction ends (a backend with many
        writers: an append reads the head and extends it; an erasure redacts records)."""

    def splink_api(self) -> Any:
        """Splink's DuckDB backend on a connection of its own to an in-memory
        database, whatever the store: the resolver hands it the records as a
        table (read through the store), so it never touches or locks the store."""
        import duckdb
        from splink import DuckDBAPI

        return DuckDBAPI(duckdb.connect(":memory:"))

    @property
    def schema_version(self) -> int:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        row = self._session().rows("""
            SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM profiles),
                   (SELECT count(*) FROM identities), (SELECT count(*) FROM quarantine),
                   (SELECT count(*) FROM profile_merges), (SELECT count(*) FROM identity_conflicts),
                   (SELECT min(timestamp) FROM events), (SELECT max(timestamp) FROM events)""")[0]
        keys = ("events", "profiles", "identities", "quarantined", "merges", "refused_links", "first_event", "last_event")
        out = dict(zip(keys, row))
        for k in ("first_event", "last_event"):
            out[k] = out[k].isoformat() if out[k] is not None else None
        out["schema_version"] = self.schema_version
        return out

    # -- the event log's positions, committed with the batches that carried them ---------
    def committed_positions(self, stream: str) -> dict[int, int]:
        return {int(p): int(c) for p, c in self._session().rows(
            "SELECT partition, committed FROM log_positions WHERE stream = ?", [stream])}

    # -- quality reports ------------------------------------------------------------------
    def save_quality_report(self, report: dict[str, Any]) -> int:
        import orjson

        with self._writing() as db:
            return int(db.rows(f"INSERT INTO quality_reports (run_at, report) VALUES (?, {db.json_param()}) RETURNING id",
                               [report["run_at"], orjson.dumps(report).decode()])[0][0])

    def quality_reports(self, limit: int = 10) -> list[dict[str, Any]]:
        import orjson

        rows = self._session().rows("SELECT id, report FROM quality_reports ORDER BY id DESC LIMIT ?", [limit])
        return [{"id": i, **orjson.loads(r)} for i, r in rows]
