"""Computed traits (RFM, lifecycle, clusters, model scores) on profiles, with transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa


class ComputedTraits(Protocol):
    def write_computed(self, keys: list[str], table: pa.Table, now: datetime,
                       history_keys: tuple[str, ...] = ()) -> list[str]: ...
    def computed_history(self, profile_id: str, key: str | None = None) -> list[dict[str, Any]]: ...
    def computed_distribution(self, key: str) -> list[dict[str, Any]]: ...
