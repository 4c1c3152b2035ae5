"""Periodic batch jobs inside `personable serve`: segment refresh (which
catches the transitions that only the passing of time causes), RFM, lifecycle.

One daemon thread; each job runs at start and then every ``interval`` seconds
of the injectable clock, so a test on a ``SimulatedClock`` moves time and calls
``run_due`` instead of waiting. A failing job is logged and retried at its next turn.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from .clock import Clock, SystemClock

log = logging.getLogger("personable.scheduler")


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], object]
    next_at: datetime | None = None   # None: due now
    runs: int = 0
    failures: int = 0


class Scheduler:
    def __init__(self, jobs: list[Job], clock: Clock | None = None, poll_seconds: float = 0.5):
        self.jobs = jobs
        self.clock = clock or SystemClock()
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="personable-scheduler", daemon=True)

    def start(self) -> None:
        if self.jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def status(self) -> list[dict[str, object]]:
        return [{"job": j.name, "interval_s": j.interval, "runs": j.runs, "failures": j.failures} for j in self.jobs]

    def run_due(self) -> int:
        """Run every job whose time has come on the clock; returns how many ran."""
        ran = 0
        for job in self.jobs:
            now = self.clock.now()
            if self._stop.is_set() or (job.next_at is not None and now < job.next_at):
                continue
            try:
                job.run()
                job.runs += 1
            except Exception:
                job.failures += 1
                log.exception("scheduled job %s failed; it runs again in %.0f s", job.name, job.interval)
            job.next_at = self.clock.now() + timedelta(seconds=job.interval)
            ran += 1
        return ran

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            now = self.clock.now()
            wait = min(((j.next_at - now).total_seconds() for j in self.jobs if j.next_at), default=60.0)
            # Polled, not slept through: a simulated clock may jump ahead meanwhile.
            self._stop.wait(max(0.05, min(wait, self.poll_seconds, 60.0)))


class Ticker:
    """Call ``fn`` every ``interval`` seconds on its own thread (realtime segments, refusals)."""

    def __init__(self, name: str, interval: float, fn: Callable[[], object]):
        self.name, self.interval, self.fn = name, interval, fn
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
                log.exception("%s failed; what it had pending stays pending", self.name)

