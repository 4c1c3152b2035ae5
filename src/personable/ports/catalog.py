"""The item catalog (read through Analytics, written here)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pyarrow as pa


class Catalog(Protocol):
    def upsert_items(self, table: pa.Table, source: str, now: datetime, only_new: bool = False) -> int: ...
