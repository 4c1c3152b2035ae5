"""The durable event log the request path appends to before it acknowledges.

One partition today (the file log): an offset is a record count. A Kafka log
will need positions per partition, committed with each batch; that change is
this port's next step (see docs/architecture.md)."""

from __future__ import annotations

from typing import Protocol


class EventLog(Protocol):
    capabilities: frozenset[str]

    def append(self, records: list[bytes]) -> int: ...
    def read(self, after: int, max_records: int) -> tuple[list[bytes], int]: ...
    def end_offset(self) -> int: ...
    def wait_beyond(self, offset: int, timeout: float) -> bool: ...
    def release(self, offset: int) -> None: ...
    def close(self) -> None: ...
