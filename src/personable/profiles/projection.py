"""Profile documents projected into the online store.

A component, not a service call: it reacts to ``profiles.changed`` on the bus,
so the write path, segments, models and resolution only say which profiles
changed. Each projection records the watermark (the commit time) it applied;
after a crash, ``catch_up`` projects whatever is newer.
"""

from __future__ import annotations

import threading
from datetime import datetime

from ..ports import OnlineStore, ProfileProjection, ProfilesChanged

CHUNK = 50_000  # documents per write: bounds memory on a backfill of millions


class OnlineProjection:
    def __init__(self, source: ProfileProjection, online: OnlineStore):
        self.source, self.online = source, online
        self._lock = threading.Lock()  # projections of two threads must not interleave their watermarks

    def on_changed(self, message: ProfilesChanged) -> None:
        if message.touched is None:
            self.catch_up()
            return
        self.project(list(message.touched), list(message.removed), message.watermark)

    def project(self, touched: list[str], removed: list[str], watermark: datetime | None) -> None:
        with self._lock:
            for i in range(0, max(len(touched), 1), CHUNK):
                part = touched[i:i + CHUNK]
                last = i + CHUNK >= len(touched)
                self.online.apply(self.source.profile_docs(part), self.source.lookup_keys(part),
                                  removed if last else [], watermark.isoformat() if last and watermark else None)

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
