"""What a server runs besides answering requests: the log worker (event log ->
store), the scheduler (segments, models, recommendations on their intervals)
and the realtime segment flusher. One object, so the same work runs whether
the store lives in the HTTP process or in its own (``server/host.py``)."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from ..log_worker import LogWorker
from ..scheduler import Job, Scheduler, Ticker


class Background:
    def __init__(self, engine: Engine):
        cfg = engine.config
        self.engine = engine
        self.worker = LogWorker(engine, gather_s=cfg.server.store_interval_ms / 1000)

        def scheduled_segments() -> None:
            # Computed traits first: rules may use RFM segments and lifecycle stages.
            engine.segments.compute()
            engine.segments.refresh(cause="scheduled")

        jobs = [Job("segments", cfg.segments_refresh_minutes * 60, scheduled_segments)]
        if cfg.models.maintain:
            jobs.append(Job("models", cfg.models_maintain_hours * 3600, engine.models.maintain))
        if cfg.recommend.retrain_hours:
            jobs.append(Job("recommend", cfg.recommend.retrain_hours * 3600, engine.recommend.train))
        if cfg.privacy.retention.configured:
            jobs.append(Job("retention", 24 * 3600, engine.privacy.retention))
        self.scheduler = Scheduler(jobs, engine.clock)
        engine.defer_realtime()
        if "threads" in engine.store.capabilities and cfg.server.store_threads:
            # Measured on 2 cores: with DuckDB on every core, each store job
            # (a worker batch, a realtime pass) starved the request path; /v1/track
            # p99 went from 11 ms to 25-50 ms. One thread leaves a core for requests.
            engine.store.set_threads(cfg.server.store_threads)
        self.realtime = Ticker("realtime-segments", cfg.realtime_segments_interval_ms / 1000, engine.flush_realtime)
        # Refusals on the request path are buffered (privacy/refusals.py): written within a second.
        self.refusals = Ticker("consent-refusals", 1.0, engine.privacy.refusals.flush)
        self.audit = Ticker("audit", 1.0, engine.audit.flush)

    def start(self) -> None:
        """Warm up (the first batch's one-time work, before traffic), then start every thread."""
        self.engine.warm_up()
        self.worker.start()
        self.scheduler.start()
        self.realtime.start()
        self.refusals.start()
        self.audit.start()

    def stop(self) -> None:
        """Stop every thread; what was accepted is stored first (no backlog is left)."""
        self.scheduler.stop()
        self.worker.stop()
        self.realtime.stop()
        self.refusals.stop()
        self.audit.stop()

    def health(self) -> dict[str, Any]:
        return {"schema_version": self.engine.store.schema_version, "worker_failures": self.worker.failures,
                "worker_set_aside": self.worker.set_aside, "jobs": self.scheduler.status()}
