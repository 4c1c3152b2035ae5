"""Profile documents projected into the online store.

A component, not a service call: it reacts to ``profiles.changed`` on the bus,
so the write path, segments, models and resolution only say which profiles
changed. Each projection records the watermark (the commit time) it applied;
after a crash, ``catch_up`` projects whatever is newer.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime

from ..ports import OnlineStore, ProfileProjection, ProfilesChanged

CHUNK = 50_000  # documents per write: bounds memory on a backfill of millions


class OnlineProjection:
    def __init__(self, source: ProfileProjection, online: OnlineStore):
        self.source, self.online = source, online
        self._lock = threading.Lock()  # projections of two threads must not interleave their watermarks
        self._reader: ThreadPoolExecutor | None = None

    def on_changed(self, message: ProfilesChanged) -> None:
        if message.touched is None:
            self.catch_up()
            return
        self.project(list(message.touched), list(message.removed), message.watermark)

    def project(self, touched: list[str], removed: list[str], watermark: datetime | None) -> None:
        parts = [touched[i:i + CHUNK] for i in range(0, max(len(touched), 1), CHUNK)]
        with self._lock:
            if len(parts) == 1:
                self._apply(self._read(parts[0]), removed, watermark, last=True)
                return
            # A backfill of many parts: the next part's documents are built (in
            # the offline store, which releases the GIL) while this one is
            # written (SQLite releases it too), so the two stores work at once.
            # One reader thread for the projection's life: a store may hold a
            # connection per thread (PostgreSQL does).
            if self._reader is None:
                self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection-reader")
            ahead = self._reader.submit(self._read, parts[0])
            try:
                for n in range(len(parts)):
                    rows = ahead.result()
                    if n + 1 < len(parts):
                        ahead = self._reader.submit(self._read, parts[n + 1])
                    self._apply(rows, removed, watermark, last=n + 1 == len(parts))
            finally:
                # A failed write must not leave a read running on into a store
                # being closed; the write's error is the one that goes on.
                if not ahead.cancel():
                    wait([ahead])

    def _read(self, part: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return self.source.profile_docs(part), self.source.lookup_keys(part)

    def _apply(self, rows: tuple[list[tuple[str, str]], list[tuple[str, str]]], removed: list[str],
               watermark: datetime | None, last: bool) -> None:
        docs, keys = rows
        self.online.apply(docs, keys, removed if last else [], watermark.isoformat() if last and watermark else None)

    def close(self) -> None:
        """End the reader thread (the stores are closed after this)."""
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None

    def pending(self) -> tuple[list[str], datetime | None]:
        """Profiles changed since the online store's watermark -- what a crash
        (or an import killed between its chunks) left unprojected -- and the
        newest change's time."""
        return self.source.changed_since(self.online.watermark())

    def catch_up(self) -> int:
        """Project every profile changed since the online store's watermark."""
        touched, newest = self.pending()
        if touched:
            self.project(touched, [], newest)
        return len(touched)
