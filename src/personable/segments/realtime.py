"""Realtime segments: re-judging the profiles each batch touched.

Subscribes to ``profiles.changed`` from the write path (a file import sends
one message for all its chunks, at the end). Inline (the Python
API, imports) it judges at once, before the online projection runs, so the
projected documents already show the new memberships. Deferred (under
``personable serve``) it collects the profiles and judges them on ``flush``,
a few times a second, then announces the profiles whose memberships moved.
A failed flush keeps its profiles pending for the next one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..ports import PROFILES_CHANGED, EventBus, ProfilesChanged

if TYPE_CHECKING:
    from .service import SegmentService


# The write path's batches, and on open the profiles a crash left unprojected
# (``recovery``: e.g. an import killed between chunks, whose single
# end-of-import message never went out).
JUDGED_ORIGINS = frozenset({"write", "recovery"})
JUDGE_SLICE = 100_000  # profiles per judging transaction


class RealtimeSegments:
    def __init__(self, segments: "SegmentService", bus: EventBus):
        self.segments, self.bus = segments, bus
        self.deferred = False
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def on_changed(self, message: ProfilesChanged) -> None:
        if message.origin not in JUDGED_ORIGINS or not message.touched:
            return
        if self.deferred:
            with self._pending_lock:
                self._pending.update(message.touched)
            return
        self._judge(list(message.touched))

    def _judge(self, profiles: list[str]) -> set[str]:
        """In slices, each its own transaction: a backfill of millions of
        profiles copies one slice's rows at a time, not every event at once."""
        moved: set[str] = set()
        for i in range(0, len(profiles), JUDGE_SLICE):
            moved |= self.segments.on_batch(profiles[i:i + JUDGE_SLICE])
        return moved

    def defer(self) -> None:
        self.deferred = True

    def pending(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    def flush(self) -> int:
        """Judge every profile touched since the last flush; returns how many."""
        with self._flush_lock:
            with self._pending_lock:
                taken, self._pending = self._pending, set()
            if not taken:
                return 0
            try:
                moved = self._judge(sorted(taken))
            except BaseException:
                with self._pending_lock:
                    self._pending |= taken   # judged next time, not lost
                raise
            if moved:
                self.bus.publish(PROFILES_CHANGED, ProfilesChanged(tuple(sorted(moved)), origin="segments"))
            return len(taken)
