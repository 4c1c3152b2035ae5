"""The durable event log the request path appends to before it acknowledges.

Positions are per partition (``{partition: position just past the last
record}``), as a partitioned log (Kafka) has them; the file log has one
partition, 0. The store commits the positions a batch carried in the batch's
own transaction, so a crash replays exactly what was not stored."""

from __future__ import annotations

from typing import Mapping, Protocol

Positions = Mapping[int, int]


def beyond(a: Positions, b: Positions) -> bool:
    """Whether ``a`` is past ``b`` in some partition."""
    return any(pos > b.get(partition, 0) for partition, pos in a.items())


def covers(a: Positions, b: Positions) -> bool:
    """Whether ``a`` has reached ``b`` in every partition of ``b``."""
    return all(a.get(partition, 0) >= pos for partition, pos in b.items())


def furthest(a: Positions, b: Positions) -> dict[int, int]:
    """Per partition, the further of the two."""
    return {p: max(a.get(p, 0), b.get(p, 0)) for p in set(a) | set(b)}


class EventLog(Protocol):
    capabilities: frozenset[str]

    def append(self, records: list[bytes]) -> Positions:
        """Write records durably; the log's end positions once they are in."""
        ...
    def read(self, after: Positions, max_records: int) -> tuple[list[bytes], Positions]:
        """Up to ``max_records`` records after ``after`` and the positions past them."""
        ...
    def end(self) -> Positions: ...
    def wait_beyond(self, after: Positions, timeout: float) -> bool: ...
    def release(self, committed: Positions) -> None:
        """What is wholly before ``committed`` may be deleted (it is in the store)."""
        ...
    def retained(self) -> Positions:
        """Per partition, the earliest position the log still holds records from (an erasure waits
        until everything before its request has gone)."""
        ...
    def close(self) -> None: ...
