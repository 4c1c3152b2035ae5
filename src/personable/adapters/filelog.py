"""A durable, append-only event log on local disk: the embedded EventLog.

The HTTP write path acknowledges an event once it is here (written and
fsync'ed, many requests per fsync); a worker then moves it into the store in
large batches and commits the log offset in the same transaction, so a crash at
any point loses nothing and applies nothing twice. Kafka plays this role at
scale; this is the same contract on one machine.

Records are single lines (JSON has no raw newlines), kept in segment files named
by the global byte offset they start at. It has one partition (0), whose
position is a global byte offset.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Mapping

PARTITION = 0
SEGMENT_BYTES = 64 * 1024 * 1024
READ_BYTES = 16 * 1024 * 1024


class FileLog:
    capabilities = frozenset({"durable_log"})

    def __init__(self, directory: str | Path, segment_bytes: int = SEGMENT_BYTES):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        segments = self._segments()
        if not segments:
            (self.dir / self._name(0)).touch()
            segments = [0]
        self._active_start = segments[-1]
        active = self.dir / self._name(self._active_start)
        self._drop_torn_tail(active)
        self._fh = open(active, "ab")
        self._end = self._active_start + active.stat().st_size

    @staticmethod
    def _name(start: int) -> str:
        return f"{start:020d}.log"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.log") if p.stem.isdigit())

    @staticmethod
    def _drop_torn_tail(path: Path) -> None:
        """A crash mid-write can leave a last line without its newline: it was
        never acknowledged, so it is cut off."""
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, records: list[bytes]) -> dict[int, int]:
        """Write records durably; returns the position just past the last one."""
        return {PARTITION: self._append(records)}

    def end(self) -> dict[int, int]:
        return {PARTITION: self.end_offset()}

    def read(self, after: Mapping[int, int], max_records: int) -> tuple[list[bytes], dict[int, int]]:
        records, position = self.read_from(after.get(PARTITION, 0), max_records)
        return records, {PARTITION: position}

    def wait_beyond(self, after: Mapping[int, int], timeout: float) -> bool:
        """Block until something past ``after`` is in the log (or timeout)."""
        offset = after.get(PARTITION, 0)
        with self._appended:
            return self._appended.wait_for(lambda: self._end > offset, timeout)

    def release(self, committed: Mapping[int, int]) -> None:
        """Delete segments wholly before the committed position (already in the store)."""
        offset = committed.get(PARTITION, 0)
        segments = self._segments()
        for start, nxt in zip(segments, segments[1:]):
            if nxt <= offset and start != self._active_start:
                (self.dir / self._name(start)).unlink(missing_ok=True)

    # -- the one partition, by byte offset ------------------------------------------------
    def _append(self, records: list[bytes]) -> int:
        if not records:
            return self._end
        payload = b"\n".join(records) + b"\n"
        with self._lock:
            if self._end - self._active_start >= self.segment_bytes:
                self._fh.close()
                self._active_start = self._end
                self._fh = open(self.dir / self._name(self._active_start), "ab")
            self._fh.write(payload)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._end += len(payload)
            self._appended.notify_all()
            return self._end

    def end_offset(self) -> int:
        with self._lock:
            return self._end

    def read_from(self, after: int, max_records: int) -> tuple[list[bytes], int]:
        """Up to ``max_records`` complete records after ``after``, and the offset past them."""
        end = self.end_offset()
        records: list[bytes] = []
        position = after
        for start in self._segments():
            path = self.dir / self._name(start)
            size = path.stat().st_size
            if start + size <= position or position >= end:
                continue
            skip = max(position - start, 0)
            available = min(size, end - start) - skip
            block = READ_BYTES
            with open(path, "rb") as fh:
                while True:  # read a bounded block, growing it only for a record larger than it
                    fh.seek(skip)
                    chunk = fh.read(min(block, available))
                    if b"\n" in chunk or block >= available:
                        break
                    block *= 2
            lines = chunk.split(b"\n")
            complete = lines[:-1]  # the part after the last newline is not complete yet
            take = complete[: max_records - len(records)]
            records.extend(take)
            position = max(position, start) + sum(len(x) + 1 for x in take)
            if len(records) >= max_records or len(take) < len(complete) or len(chunk) < available:
                break
        return records, position

    def close(self) -> None:
        with self._lock:
            self._fh.close()
