"""The worker that moves accepted events from the event log into the store.

One thread per server. It works in batches as large as the backlog allows, so
under load the store sees few, big transactions while requests are acknowledged
as soon as their events are in the log.
"""

from __future__ import annotations

import logging
import threading

from .engine import LOG_STREAM

log = logging.getLogger("personable.worker")


class LogWorker:
    def __init__(self, engine, max_records: int = 50_000, idle_wait: float = 0.5):
        self.engine = engine
        self.max_records = max_records
        self.idle_wait = idle_wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="personable-log-worker", daemon=True)
        self.failures = 0

    def start(self) -> None:
        if self.engine.log is not None:
            self._thread.start()

    def stop(self) -> None:
        """Stop after storing everything already accepted (a clean shutdown leaves no backlog)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.engine.log is not None:
            self.engine.catch_up()

    def _run(self) -> None:
        engine = self.engine
        while not self._stop.is_set():
            try:
                done = engine.process_log(self.max_records)
            except Exception:  # the batch stays in the log and is retried; nothing is lost
                self.failures += 1
                log.exception("storing a batch from the event log failed; retrying")
                self._stop.wait(min(5.0, 0.1 * 2 ** min(self.failures, 6)))
                continue
            self.failures = 0
            if not done:
                engine.log.wait_beyond(engine.store.committed_positions(LOG_STREAM), self.idle_wait)
