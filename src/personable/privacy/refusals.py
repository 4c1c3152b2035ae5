"""Every refusal of a use by the consent policy, recorded with its purpose and
reason, and countable (``personable privacy refusals``, ``GET /v1/privacy/refusals``).

Refusals on the request path (a recommendation for a profile that denied
personalization) are buffered and written in batches: one store transaction
per request would cost more than the request. The buffer is written when it
fills, when counts are asked for, on the store process's tick
(``server/background.py``) and on close.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable

from ..ports.consent import REFUSAL

if TYPE_CHECKING:
    from ..clock import Clock
    from ..ports.consent import ConsentStore
    from .consent import Verdict

FLUSH_AT = 500


class RefusalLog:
    def __init__(self, store: "ConsentStore", clock: "Clock"):
        self.store = store
        self.clock = clock
        self._pending: list[tuple[datetime, str | None, str, str, str]] = []
        self._lock = threading.Lock()

    def refused(self, use: str, verdict: "Verdict", profile_id: str | None) -> None:
        with self._lock:
            self._pending.append((self.clock.now(), profile_id, use, verdict.purpose, verdict.reason))
            full = len(self._pending) >= FLUSH_AT
        if full:
            self.flush()

    def refused_many(self, use: str, purpose: str, refused: Iterable[tuple[str, str]]) -> int:
        """Record (profile_id, reason) pairs of one batch use at once; returns how many."""
        now = self.clock.now()
        with self._lock:
            before = len(self._pending)
            self._pending.extend((now, pid, use, purpose, reason) for pid, reason in refused)
            n = len(self._pending) - before
        self.flush()
        return n

    def flush(self) -> int:
        import pyarrow as pa

        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            self.store.append_refusals(pa.table({c: [r[i] for r in rows] for i, c in enumerate(REFUSAL)},
                                                schema=_schema()))
        except BaseException:
            with self._lock:       # kept for the next try: a refusal is never lost to a busy store
                self._pending[:0] = rows
            raise
        return len(rows)

    def counts(self, since: datetime | None = None) -> list[dict[str, Any]]:
        self.flush()
        return self.store.refusal_counts(since)


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("refused_at", pa.timestamp("us", tz="UTC")), ("profile_id", pa.string()),
                      ("use", pa.string()), ("purpose", pa.string()), ("reason", pa.string())])
