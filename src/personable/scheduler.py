"""Periodic batch jobs inside `personable serve`: segment refresh (which
catches the transitions that only the passing of time causes), RFM, lifecycle.

One daemon thread; each job runs at start and then every ``interval`` seconds.
A failing job is logged and retried at its next turn.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("personable.scheduler")


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], object]
    next_at: float = 0.0
    runs: int = 0
    failures: int = 0


class Scheduler:
    def __init__(self, jobs: list[Job]):
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="personable-scheduler", daemon=True)

    def start(self) -> None:
        if self.jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def status(self) -> list[dict]:
        return [{"job": j.name, "interval_s": j.interval, "runs": j.runs, "failures": j.failures} for j in self.jobs]

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for job in self.jobs:
                if self._stop.is_set() or now < job.next_at:
                    continue
                try:
                    job.run()
                    job.runs += 1
                except Exception:
                    job.failures += 1
                    log.exception("scheduled job %s failed; it runs again in %.0f s", job.name, job.interval)
                job.next_at = time.monotonic() + job.interval
            wait = min((j.next_at for j in self.jobs), default=time.monotonic() + 60) - time.monotonic()
            self._stop.wait(max(0.5, min(wait, 60.0)))


class Ticker:
    """Call ``fn`` every ``interval`` seconds on its own thread (realtime segments)."""

    def __init__(self, name: str, interval: float, fn: Callable[[], object]):
        self.interval, self.fn = interval, fn
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"personable-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.fn()  # what was pending at shutdown

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fn()
            except Exception:
                self.failures += 1
                log.exception("realtime segment evaluation failed; the profiles stay pending")

