"""The model registry: versions with their window, features, metrics, and monitoring records."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class ModelRegistry(Protocol):
    def register_model(self, name: str, kind: str, trained_at: datetime, train_cutoff: datetime | None,
                       horizon_days: int | None, features: list[str], params: dict[str, Any],
                       metrics: dict[str, Any], data_hash: str, artifact: str, reason: str) -> int: ...
    def set_model_artifact(self, name: str, version: int, path: str) -> None: ...
    def model_versions(self, name: str | None = None) -> list[dict[str, Any]]: ...
    def record_monitoring(self, name: str, version: int, checked_at: datetime, kind: str,
                          report: dict[str, Any]) -> None: ...
    def monitoring(self, name: str, limit: int = 20) -> list[dict[str, Any]]: ...
