"""The model registry's metadata on DuckDB (artifacts are files). Mixin for DuckDBStore."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson


class ModelsStore:
    _write_lock: Any
    _writer: Any

    def cursor(self) -> Any: ...

    def register_model(self, name: str, kind: str, trained_at: datetime, train_cutoff: datetime | None,
                       horizon_days: int | None, features: list[str], params: dict, metrics: dict, data_hash: str,
                       artifact: str, reason: str) -> int:
        with self._write_lock:
            version = self._writer.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE name = ?",
                                           [name]).fetchall()[0][0]
            self._writer.execute("INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 [name, version, kind, trained_at, train_cutoff, horizon_days,
                                  orjson.dumps(features).decode(), orjson.dumps(params, default=str).decode(),
                                  orjson.dumps(metrics, default=str).decode(), data_hash, artifact, reason])
        return int(version)

    def set_model_artifact(self, name: str, version: int, path: str) -> None:
        with self._write_lock:
            self._writer.execute("UPDATE model_versions SET artifact = ? WHERE name = ? AND version = ?",
                                 [path, name, version])

    def model_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""
            SELECT name, version, kind, trained_at, train_cutoff, horizon_days, features, params, metrics, data_hash,
                   artifact, reason FROM model_versions WHERE $n IS NULL OR name = $n ORDER BY name, version""",
                                     {"n": name}).fetchall()
        keys = ("name", "version", "kind", "trained_at", "train_cutoff", "horizon_days", "features", "params", "metrics",
                "data_hash", "artifact", "reason")
        out = []
        for r in rows:
            item = dict(zip(keys, r))
            for k in ("features", "params", "metrics"):
                item[k] = orjson.loads(item[k]) if item[k] else None
            for k in ("trained_at", "train_cutoff"):
                item[k] = item[k].isoformat() if item[k] else None
            out.append(item)
        return out

    def record_monitoring(self, name: str, version: int, checked_at: datetime, kind: str, report: dict) -> None:
        with self._write_lock:
            self._writer.execute("INSERT INTO model_monitoring VALUES (?, ?, ?, ?, ?)",
                                 [name, version, checked_at, kind, orjson.dumps(report, default=str).decode()])

    def monitoring(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.cursor().execute("""SELECT version, checked_at, kind, report FROM model_monitoring WHERE name = ?
                                        ORDER BY checked_at DESC LIMIT ?""", [name, limit]).fetchall()
        return [{"version": v, "checked_at": at.isoformat(), "kind": k, "report": orjson.loads(r)} for v, at, k, r in rows]
