"""Per-key rate limits: a token bucket per key, in the HTTP process (each
process limits what it serves)."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}   # key -> (tokens, at)
        self._lock = threading.Lock()

    def wait_for(self, key: str, rate: float, now: float | None = None) -> float:
        """0 when ``key`` may make a request now (one token taken); else the
        seconds until it may. The bucket holds up to two seconds' worth (bursts)."""
        if rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        burst = max(1.0, 2 * rate)
        with self._lock:
            tokens, at = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate
