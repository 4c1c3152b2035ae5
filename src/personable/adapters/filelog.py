"""A durable, append-only event log on local disk: the embedded EventLog.

The HTTP write path acknowledges an event once it is here (written and
fsync'ed, many requests per fsync); a worker then moves it into the store in
large batches and commits the log offset in the same transaction, so a crash at
any point loses nothing and applies nothing twice. Kafka plays this role at
scale; this is the same contract on one machine.

Records are single lines (JSON has no raw newlines), kept in segment files named
by the global byte offset they start at. It has one partition (0), whose
position is a global byte offset.

Records are encrypted at rest when a cipher is given (``privacy/log_cipher.py``:
AES-GCM under a data key per segment, kept beside it as ``<start>.key``, wrapped
by the project's key-encryption key); what one append wrote is then one sealed
line, read back whole, so offsets are the bytes on disk either way.

One process writes the log (:class:`FileLog`). The worker that stores it may
run in another process (``personable serve`` runs it in its store process):
there it is a :class:`FollowedLog`, which reads only up to the end the writer
announced after its fsync, so it never stores a record that is not yet durable
(one a crash could cut off the log while the store kept it, leaving the store's
committed position past the log's end).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import StoreError

if TYPE_CHECKING:
    from ..privacy.log_cipher import LogCipher

PARTITION = 0
SEGMENT_BYTES = 64 * 1024 * 1024
READ_BYTES = 16 * 1024 * 1024
# A segment is closed this long after its first record at most, so that once
# stored it can be deleted: the log keeps no personal data beyond its job.
ROLL_S = 5.0


class _Segments:
    """A log directory's segment files, as every process that reads them sees them."""

    capabilities = frozenset({"durable_log"})

    def __init__(self, directory: str | Path, cipher: "LogCipher | None" = None):
        self.dir = Path(directory)
        self.cipher = cipher
        self._keys: dict[int, tuple[Any, int]] = {}   # segment start -> (its cipher, sealed from), once read
        self._unkeyed: set[int] = set()                # segments seen without a key (plain)

    @staticmethod
    def _name(start: int) -> str:
        return f"{start:020d}.log"

    def _key_path(self, start: int) -> Path:
        return self.dir / f"{start:020d}.key"

    def _segment_key(self, start: int) -> tuple[Any, int]:
        """A sealed segment's cipher and the offset its sealing began at (before it, plain records)."""
        if start not in self._keys:
            if self.cipher is None:
                raise StoreError(f"{self.dir}: the event log holds encrypted records, and this process has no "
                                 "key-encryption key to open them")
            try:
                stored = self._key_path(start).read_bytes()
            except FileNotFoundError:
                raise StoreError(f"{self._key_path(start)}: the key of an encrypted log segment is missing") from None
            try:
                self._keys[start] = (self.cipher.key(stored[8:]), int.from_bytes(stored[:8], "big"))
            except ValueError as exc:
                raise StoreError(f"{self._key_path(start)}: {exc}") from exc
        return self._keys[start]

    def _plain_allowed(self, start: int, offset: int) -> bool:
        """Whether a plain line may stand at ``offset``: before the segment's sealing began, or in a segment
        never sealed."""
        if start not in self._keys:
            if start in self._unkeyed:
                return True
            if not self._key_path(start).exists():
                self._unkeyed.add(start)
                return True
        return offset < self._segment_key(start)[1]

    def _opened(self, start: int, line: bytes, offset: int) -> list[bytes]:
        """The records the stored line at ``offset`` of a segment holds: itself, or (sealed) those of one
        append. A plain line where the segment was being sealed was not written by this log: refused."""
        from ..privacy.log_cipher import LogCipher

        if not LogCipher.sealed(line):
            if not self._plain_allowed(start, offset):
                raise StoreError(f"{self._name(start)}: a record in plain text at offset {offset} of an encrypted "
                                 "segment (not written by the event log): refused")
            return [line]
        aes, _ = self._segment_key(start)
        try:
            return LogCipher.open(aes, line, offset).split(b"\n")
        except ValueError as exc:
            raise StoreError(f"{self._name(start)} at offset {offset}: {exc}") from exc

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.log") if p.stem.isdigit())

    def end_offset(self) -> int:
        """The offset past the last durable record."""
        raise NotImplementedError

    def end(self) -> dict[int, int]:
        return {PARTITION: self.end_offset()}

    def read(self, after: Mapping[int, int], max_records: int) -> tuple[list[bytes], dict[int, int]]:
        records, position = self.read_from(after.get(PARTITION, 0), max_records)
        return records, {PARTITION: position}

    def release(self, committed: Mapping[int, int]) -> None:
        """Delete segments wholly before the committed position (already in the
        store). The last segment is the one being written: it always stays."""
        offset = committed.get(PARTITION, 0)
        segments = self._segments()
        for start, nxt in zip(segments, segments[1:]):
            if nxt <= offset:
                (self.dir / self._name(start)).unlink(missing_ok=True)
                self._key_path(start).unlink(missing_ok=True)
                self._keys.pop(start, None)
                self._unkeyed.discard(start)

    def retained(self) -> dict[int, int]:
        """The start of the oldest segment still on disk (an empty one holds nothing: its end)."""
        for start in self._segments():
            try:
                if (self.dir / self._name(start)).stat().st_size:
                    return {PARTITION: start}
            except FileNotFoundError:
                continue
        return {PARTITION: self.end_offset()}

    def read_from(self, after: int, max_records: int) -> tuple[list[bytes], int]:
        """Up to ``max_records`` complete records after ``after``, and the offset past them."""
        end = self.end_offset()
        records: list[bytes] = []
        position = after
        for start in self._segments():
            path = self.dir / self._name(start)
            try:
                size = path.stat().st_size
            except FileNotFoundError:    # released meanwhile: wholly stored
                continue
            if start + size <= position or position >= end:
                continue
            skip = max(position - start, 0)
            available = min(size, end - start) - skip
            if available <= 0:
                break
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
            taken, offset = 0, start + skip
            for line in complete:        # a sealed line holds a whole append: it is taken whole
                if len(records) >= max_records:
                    break
                records.extend(self._opened(start, line, offset))
                offset += len(line) + 1
                taken += 1
            position = max(position, start) + sum(len(x) + 1 for x in complete[:taken])
            if len(records) >= max_records or taken < len(complete) or len(chunk) < available:
                break
        return records, position


class FileLog(_Segments):
    """The log as its one writer holds it."""

    def __init__(self, directory: str | Path, segment_bytes: int = SEGMENT_BYTES, roll_s: float = ROLL_S,
                 cipher: "LogCipher | None" = None, seal: bool = True):
        """``cipher``: opens sealed segments (and, with ``seal``, seals new records)."""
        super().__init__(directory, cipher)
        self.seal = seal
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
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
        self._sealing = self._sealing_key(self._active_start)
        self._fh = open(active, "ab")
        self._end = self._active_start + active.stat().st_size
        if not self.seal and self._end > self._active_start and self._key_path(self._active_start).exists():
            self._roll()        # plain records go to a segment of their own, not after sealed ones
        # Segments roll by age too, even while no record arrives: the store
        # releases (deletes) a segment only once a later one exists.
        self._closing = threading.Event()
        self._roller = threading.Thread(target=self._roll_by_age, args=(roll_s,), name="personable-log-roller",
                                        daemon=True)
        self._roller.start()

    def _roll_by_age(self, roll_s: float) -> None:
        while not self._closing.wait(roll_s):
            with self._lock:
                if self._end > self._active_start and not self._fh.closed:
                    self._roll()

    def _roll(self) -> None:
        """Start the next segment at the end (under the lock)."""
        self._fh.close()
        self._active_start = self._end
        self._sealing = self._sealing_key(self._active_start)
        self._fh = open(self.dir / self._name(self._active_start), "ab")

    def _sealing_key(self, start: int) -> Any:
        """The key the segment's new records are sealed with (made, and kept wrapped beside it, before any
        record is written; a segment of plain records from before gets one for what follows)."""
        if self.cipher is None or not self.seal:
            return None
        path = self._key_path(start)
        if not path.exists():
            from ..privacy.log_cipher import LogCipher

            segment = self.dir / self._name(start)
            held = segment.read_bytes() if segment.exists() else b""
            if any(LogCipher.sealed(line) for line in held.split(b"\n")):
                raise StoreError(f"{path}: the key of an encrypted log segment is missing; its records cannot "
                                 "be opened (restore the key file, or move the segment away)")
            aes, wrapped = self.cipher.new_key()
            _write_whole(path, len(held).to_bytes(8, "big") + wrapped)
            self._keys[start] = (aes, len(held))
        return self._segment_key(start)[0]

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

    def wait_beyond(self, after: Mapping[int, int], timeout: float) -> bool:
        """Block until something past ``after`` is in the log (or timeout)."""
        offset = after.get(PARTITION, 0)
        with self._appended:
            return self._appended.wait_for(lambda: self._end > offset, timeout)

    def _append(self, records: list[bytes]) -> int:
        if not records:
            return self._end
        with self._lock:
            if self._end - self._active_start >= self.segment_bytes:
                self._roll()
            payload = b"\n".join(records)
            if self._sealing is not None:
                from ..privacy.log_cipher import LogCipher

                # One sealed line per append (a group commit of requests): one cipher call, not one per record;
                # bound to its offset, so a line moved, replayed or cut out of place does not open.
                payload = LogCipher.seal(self._sealing, payload, self._end)
            payload += b"\n"
            self._fh.write(payload)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._end += len(payload)
            self._appended.notify_all()
            return self._end

    def end_offset(self) -> int:
        with self._lock:
            return self._end

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            self._fh.close()


class FollowedLog(_Segments):
    """The log as a process that does not write it sees it: records up to the
    end the writer announced (:meth:`announce`), which it does after each fsync."""

    def __init__(self, directory: str | Path, end: Mapping[int, int], cipher: "LogCipher | None" = None):
        super().__init__(directory, cipher)
        self._end = end.get(PARTITION, 0)
        self._announced = threading.Condition()

    def announce(self, end: Mapping[int, int]) -> None:
        """The writer's log is durable up to ``end``."""
        with self._announced:
            if end.get(PARTITION, 0) > self._end:
                self._end = end[PARTITION]
                self._announced.notify_all()

    def append(self, records: list[bytes]) -> dict[int, int]:
        raise StoreError("this process follows the event log; only the process answering collection "
                         "requests appends to it")

    def wait_beyond(self, after: Mapping[int, int], timeout: float) -> bool:
        offset = after.get(PARTITION, 0)
        with self._announced:
            return self._announced.wait_for(lambda: self._end > offset, timeout)

    def end_offset(self) -> int:
        with self._announced:
            return self._end

    def close(self) -> None:
        pass


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` in place of ``path``, all at once and durably (a crash leaves no torn key file)."""
    tmp = path.with_suffix(".key-new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
