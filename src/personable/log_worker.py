"""The worker that moves accepted events from the event log into the store.

One thread per server. It works in batches as large as the backlog allows, so
under load the store sees few, big transactions while requests are acknowledged
as soon as their events are in the log. Once it has caught up, it lets the next
batch gather for ``server.store_interval_ms`` before storing it: a store batch
costs ~0.25 s of CPU whatever its size (some forty statements, each planned),
so storing the log whenever it held anything kept a core busy at any load and
starved the request path. The first events after a quiet spell are stored at
once, and a read that asks for fresh data (``Engine.wait_processed``) ends the
wait. A batch that fails is retried in halves
down to the record that fails; a record that keeps failing on its own is set
aside in the quarantine with its error, so one bad record cannot stop the log.
"""

from __future__ import annotations

import logging
import threading
import time

from .engine import LOG_STREAM

log = logging.getLogger("personable.worker")


class LogWorker:
    def __init__(self, engine, max_records: int = 50_000, idle_wait: float = 0.5,
                 set_aside_after: int = 5, set_aside_after_s: float = 10.0, gather_s: float = 0.0):
        self.engine = engine
        self.max_records = max_records
        self.idle_wait = idle_wait
        self.gather_s = gather_s
        # A record that fails alone this many times in a row, for at least this
        # long, is poison (a store error that retrying will not cure): it goes to
        # the quarantine with the error, and the records after it are stored.
        self.set_aside_after = set_aside_after
        self.set_aside_after_s = set_aside_after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="personable-log-worker", daemon=True)
        self.failures = 0
        self.set_aside = 0

    def start(self) -> None:
        if self.engine.log is not None:
            self.engine.worker_running = True
            self._thread.start()

    def stop(self) -> None:
        """Stop after storing everything already accepted (a clean shutdown leaves no backlog)."""
        self._stop.set()
        self.engine.hurry.set()
        if self._thread.is_alive():
            self._thread.join()
        self.engine.worker_running = False
        if self.engine.log is not None:
            self.engine.catch_up()

    def _run(self) -> None:
        engine = self.engine
        size = self.max_records
        lone: list[float] = []    # when the lone record at the head of the log failed
        while not self._stop.is_set():
            try:
                done = engine.process_log(size)
            except Exception as exc:  # the batch stays in the log and is retried; nothing is lost
                self.failures += 1
                if size > 1:
                    # Halve to find the record that fails; those before it are stored meanwhile.
                    size = max(1, size // 2)
                    log.warning("storing a batch from the event log failed (%s); retrying %d records", exc, size)
                    self._stop.wait(0.05)
                    continue
                lone.append(time.monotonic())
                log.exception("storing the next record of the event log failed (%d time(s)); retrying", len(lone))
                if len(lone) >= self.set_aside_after and lone[-1] - lone[0] >= self.set_aside_after_s:
                    self._set_aside(exc)
                    lone.clear()
                self._stop.wait(min(5.0, 0.1 * 2 ** min(len(lone), 6)))
                continue
            self.failures = 0
            lone.clear()
            if done:
                if done < size and self.gather_s > 0:   # caught up: let the next batch gather
                    engine.hurry.wait(self.gather_s)
                    engine.hurry.clear()
                size = min(self.max_records, size * 2)
            else:
                engine.log.wait_beyond(engine.store.committed_positions(LOG_STREAM), self.idle_wait)

    def _set_aside(self, exc: Exception) -> None:
        try:
            moved = self.engine.set_aside_next(f"{type(exc).__name__}: {exc}")
        except Exception:   # the store refuses the quarantine too: it is down, not the record bad
            log.exception("could not set the failing record aside; retrying it")
            return
        self.set_aside += moved
        log.error("set a record of the event log aside in the quarantine after %d failures: %s",
                  self.set_aside_after, exc)
