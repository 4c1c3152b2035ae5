"""The model registry's metadata (artifacts are files): ``ModelRegistry`` on any SQL store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from .session import text_param
from .store_base import SqlStoreBase

MODEL_KEYS = ("name", "version", "kind", "trained_at", "train_cutoff", "horizon_days", "features", "params", "metrics",
              "data_hash", "artifact", "reason")


class ModelsStore(SqlStoreBase):
    def register_model(self, name: str, kind: str, trained_at: datetime, train_cutoff: datetime | None,
                       horizon_days: int | None, features: list[str], params: dict[str, Any],
                       metrics: dict[str, Any], data_hash: str, artifact: str, reason: str) -> int:
        with self._writing() as db:
            version = db.rows("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE name = ?", [name])[0][0]
            j = db.json_param()
            db.execute(f"INSERT INTO model_versions ({', '.join(MODEL_KEYS)}) "
                       f"VALUES (?, ?, ?, ?, ?, ?, {j}, {j}, {j}, ?, ?, ?)",
                       [name, version, kind, trained_at, train_cutoff, horizon_days,
                        orjson.dumps(features).decode(), orjson.dumps(params, default=str).decode(),
                        orjson.dumps(metrics, default=str).decode(), data_hash, artifact, reason])
        return int(version)

    def set_model_artifact(self, name: str, version: int, path: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE model_versions SET artifact = ? WHERE name = ? AND version = ?", [path, name, version])

    def model_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        rows = self._session().rows(f"""
            SELECT {', '.join(MODEL_KEYS)} FROM model_versions
            WHERE {text_param()} IS NULL OR name = ? ORDER BY name, version""", [name, name])
        out = []
        for r in rows:
            item = dict(zip(MODEL_KEYS, r))
            for k in ("features", "params", "metrics"):
                item[k] = orjson.loads(item[k]) if item[k] else None
            for k in ("trained_at", "train_cutoff"):
                item[k] = item[k].isoformat() if item[k] else None
            out.append(item)
        return out

    def record_monitoring(self, name: str, version: int, checked_at: datetime, kind: str,
                          report: dict[str, Any]) -> None:
        with self._writing() as db:
            db.execute(f"INSERT INTO model_monitoring (name, version, checked_at, kind, report) "
                       f"VALUES (?, ?, ?, ?, {db.json_param()})",
                       [name, version, checked_at, kind, orjson.dumps(report, default=str).decode()])

    def monitoring(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._session().rows("""SELECT version, checked_at, kind, report FROM model_monitoring WHERE name = ?
                                       ORDER BY checked_at DESC LIMIT ?""", [name, limit])
        return [{"version": v, "checked_at": at.isoformat(), "kind": k, "report": orjson.loads(r)} for v, at, k, r in rows]
