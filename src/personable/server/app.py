"""The HTTP API: Segment-compatible collection, profiles, quarantine, admin.

Thin by design: parse, authenticate, validate, hand over to the Engine.
"""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine import Engine
from ..errors import ErrorList, NotFound, PersonableError, Problem, ServerUnavailable, ValidationFailed
from ..events.spec import EVENT_TYPES
from ..events.message_id import ensure_message_id
from ..events.validate import check_event, raw_json
from .body import check_admin, parse_json, read_body, source_for, write_key_from
from ..profiles.document import RECENT_EVENTS
from ..log_worker import LogWorker
from ..scheduler import Job, Scheduler, Ticker
from .collector import Collector
from .quality_routes import add_quality_routes
from .model_routes import add_model_routes
from .recommend_routes import add_recommend_routes
from .segment_routes import add_segment_routes
from .params import Int
from .paths import confined
from .schemas import BATCH_SCHEMA, ERRORS, body, event_schema

log = logging.getLogger("personable.server")
COLLECTION_PATHS = frozenset([f"/v1/{kind}" for kind in EVENT_TYPES] + ["/v1/batch"])


_gc_started: list[float] = []


def _log_slow_collections(phase: str, info: dict) -> None:
    """Report collections long enough to show in request latency."""
    import time

    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        ms = (time.perf_counter() - _gc_started[0]) * 1000
        if ms > 20:
            log.warning("garbage collection (generation %s) took %.0f ms, collected %s", info.get("generation"), ms,
                        info.get("collected"))


def create_app(engine: Engine) -> FastAPI:
    cfg = engine.config
    collector = Collector(engine, cfg.server.commit_interval_ms, cfg.server.max_batch_events)
    worker = LogWorker(engine)
    def scheduled_segments() -> None:
        # Computed traits first: rules may use RFM segments and lifecycle stages.
        engine.segments.compute()
        engine.segments.refresh(cause="scheduled")

    jobs = [Job("segments", cfg.segments_refresh_minutes * 60, scheduled_segments)]
    if cfg.models.maintain:
        jobs.append(Job("models", cfg.models_maintain_hours * 3600, engine.models.maintain))
    if cfg.recommend.retrain_hours:
        jobs.append(Job("recommend", cfg.recommend.retrain_hours * 3600, engine.recommend.train))
    scheduler = Scheduler(jobs, engine.clock)
    engine.defer_realtime()
    if "threads" in engine.store.capabilities and cfg.server.store_threads:
        # Measured on 2 cores: with DuckDB on every core, each store job
        # (a worker batch, a realtime pass) starved the request path; /v1/track
        # p99 went from 11 ms to 25-50 ms. One thread leaves a core for requests.
        engine.store.set_threads(cfg.server.store_threads)
    realtime = Ticker("realtime-segments", cfg.realtime_segments_interval_ms / 1000, engine.flush_realtime)
    write_keys = cfg.write_keys()
    admin_token = cfg.admin_token()
    max_future = timedelta(hours=cfg.max_future_skew_hours)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(engine.warm_up)
        # Everything loaded so far lives as long as the server: keep it out of the
        # garbage collector's full passes, which otherwise walked it all and
        # stalled requests for ~0.1 s now and then.
        gc.collect()
        gc.freeze()
        gc.callbacks.append(_log_slow_collections)
        await collector.start()
        worker.start()
        scheduler.start()
        realtime.start()
        yield
        await run_in_threadpool(scheduler.stop)
        await collector.stop()
        await run_in_threadpool(worker.stop)
        await run_in_threadpool(realtime.stop)

    app = FastAPI(
        title="personable", version=__version__, lifespan=lifespan, default_response_class=ORJSONResponse,
        description="Segment-compatible event collection, identity stitching and unified profiles.",
    )
    app.state.engine, app.state.collector = engine, collector

    @app.exception_handler(PersonableError)
    async def _personable_error(request: Request, exc: PersonableError) -> ORJSONResponse:
        body = exc.as_dict()
        if request.url.path in COLLECTION_PATHS:
            # Our shape, plus the two top-level fields Segment-style SDKs read: RudderStack's
            # raised a KeyError without them and retried a batch that can never succeed.
            body = {**body, "code": exc.code, "message": exc.message}
        return ORJSONResponse(body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> ORJSONResponse:
        details = [Problem(".".join(str(p) for p in e.get("loc", ())), e.get("msg", "invalid")) for e in exc.errors()]
        return ORJSONResponse(ValidationFailed("invalid request", details).as_dict(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return ORJSONResponse({"error": {"code": code, "message": str(exc.detail), "details": []}},
                              status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ORJSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return ORJSONResponse({"error": {"code": "internal", "message": "internal error; see the server log",
                                         "details": []}}, status_code=500,
                             # after a failure mid-request the connection's state is unknown: say we close it
                             headers={"Connection": "close"})

    async def _collect(request: Request, forced_type: str | None) -> dict[str, Any]:
        raw = await read_body(request, cfg.server.max_body_bytes)
        payload = parse_json(raw)
        source = source_for(write_key_from(request, payload), write_keys)
        now = engine.clock.now()
        if forced_type is None:
            if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
                raise ValidationFailed("a batch body is an object with a `batch` array",
                                       [Problem("batch", "is required and must be an array")])
            events, prefix = payload["batch"], "batch"
        else:
            if not isinstance(payload, dict):
                raise ValidationFailed("the body must be a JSON object", [Problem("$", "must be a JSON object")])
            payload.setdefault("type", forced_type)
            if payload["type"] != forced_type:
                raise ValidationFailed(f"type {payload['type']!r} sent to /v1/{forced_type}",
                                       [Problem("type", f"must be {forced_type!r} on this endpoint")])
            events, prefix = [payload], ""
        if not events:
            raise ValidationFailed("the batch is empty", [Problem("batch", "must hold at least one event")])
        envelope = payload if forced_type is None else {}
        good: list[tuple[bytes, str, Any]] = []
        rejected: list[dict[str, Any]] = []
        quarantine: list[dict[str, Any]] = []
        for i, event in enumerate(events):
            errors = ErrorList()
            path = f"{prefix}[{i}]" if prefix else ""
            if isinstance(event, dict):
                # The envelope's sentAt and context become the event's before it is
                # judged: a bad envelope value is a problem, never stored unchecked.
                if "sentAt" not in event and isinstance(envelope.get("sentAt"), str):
                    event["sentAt"] = envelope["sentAt"]
                if "context" not in event and isinstance(envelope.get("context"), dict):
                    event["context"] = envelope["context"]
            check_event(event, path, errors, received_at=now, max_future=max_future, junk=cfg.identity.junk_values)
            if errors:
                rejected.append({"index": i, "details": [e.as_dict() for e in errors.items]})
                quarantine.append({"received_at": now, "source": source, "origin": "http", "record_no": i,
                                   "message_id": event.get("messageId") if isinstance(event, dict) and isinstance(event.get("messageId"), str) else None,
                                   "problems": [e.as_dict() for e in errors.items],
                                   "raw": raw_json(event)})
                continue
            # Keyed by its content when it came without a messageId: a retried batch is stored once.
            good.append((orjson.dumps(ensure_message_id(event)), source, now))
        if quarantine:
            await run_in_threadpool(engine.store.add_quarantine, quarantine)
        if not good:
            details = [Problem(d["path"], d["problem"]) for r in rejected for d in r["details"]]
            raise ValidationFailed(f"{len(rejected)} invalid event(s); nothing was accepted", details)
        await collector.submit(good)
        result: dict[str, Any] = {"success": True, "accepted": len(good)}
        if rejected:
            result["rejected"] = rejected
        return result

    responses = {200: {"description": "Accepted and durable"}, **ERRORS}

    async def _freshen(fresh: bool) -> None:
        if fresh and not await run_in_threadpool(engine.wait_processed, None, 30.0):
            raise ServerUnavailable("accepted events are not stored yet (worker behind by over 30 s); retry")

    def collection_route(kind: str) -> None:
        async def handler(request: Request) -> ORJSONResponse:
            return ORJSONResponse(await _collect(request, kind))

        handler.__name__ = f"collect_{kind}"
        app.post(f"/v1/{kind}", summary=f"Send a {kind} call", tags=["collect"], responses=responses,
                 openapi_extra=body(event_schema(kind)))(handler)

    for kind in EVENT_TYPES:
        collection_route(kind)

    @app.post("/v1/batch", summary="Send up to max_body_bytes of events at once", tags=["collect"],
              responses=responses, openapi_extra=body(BATCH_SCHEMA))
    async def collect_batch(request: Request) -> ORJSONResponse:
        """Valid events are stored; invalid ones are quarantined and listed under `rejected`.
        If no event is valid the answer is a 400."""
        return ORJSONResponse(await _collect(request, None))

    @app.post("/v1/{kind}", include_in_schema=False)
    async def unknown_kind(kind: str) -> ORJSONResponse:
        raise NotFound(f"unknown call type {kind!r}; use one of {', '.join(EVENT_TYPES)} or batch",
                       [Problem("type", f"unknown type {kind!r}")])

    @app.get("/healthz", tags=["ops"], summary="Liveness and store status")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "project": cfg.name,
                "schema_version": engine.store.schema_version, "commits": collector.batches,
                "worker_failures": worker.failures, "jobs": scheduler.status()}

    @app.get("/v1/profiles/{identifier}", tags=["profiles"], responses=ERRORS,
             summary="A unified profile by any identifier (profile id, userId, anonymousId, email:…, phone:…)")
    async def get_profile(identifier: str, request: Request, events: Int = 20, fresh: bool = False) -> ORJSONResponse:
        """`events`: how many recent events (at most 50). `fresh=true` waits until every event
        accepted before this request is stored (read your writes)."""
        check_admin(request, admin_token)
        await _freshen(fresh)
        doc = await run_in_threadpool(engine.profile, identifier, max(0, min(events, RECENT_EVENTS)))
        return ORJSONResponse(doc)

    @app.get("/v1/quarantine", tags=["quality"], responses=ERRORS, summary="Records that failed validation, newest first")
    async def get_quarantine(request: Request, limit: Int = 50, offset: Int = 0, fresh: bool = False) -> ORJSONResponse:
        check_admin(request, admin_token)
        await _freshen(fresh)
        rows = await run_in_threadpool(engine.quarantine, max(1, min(limit, 1000)), max(0, offset))
        return ORJSONResponse({"items": rows, "limit": limit, "offset": offset})

    @app.get("/v1/stats", tags=["ops"], responses=ERRORS, summary="Counts of events, profiles, identities")
    async def get_stats(request: Request, fresh: bool = False) -> ORJSONResponse:
        check_admin(request, admin_token)
        await _freshen(fresh)
        return ORJSONResponse(await run_in_threadpool(engine.stats))

    @app.post("/v1/admin/ingest", tags=["admin"], responses=ERRORS,
              summary="Import a file from the server's import folder (server.import_dir; used by the CLI while a server owns the project)",
              openapi_extra=body({"type": "object", "required": ["path"], "properties": {
                  "path": {"type": "string"}, "kind": {"enum": ["events", "crm", "orders"]},
                  "format": {"enum": ["jsonl", "csv", "parquet"]}, "mapping": {"type": "object"},
                  "source": {"type": "string"}}}))
    async def admin_ingest(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        payload = parse_json(await read_body(request, 1_000_000))
        if not isinstance(payload, dict) or not isinstance(payload.get("path"), str):
            raise ValidationFailed("body needs a `path`", [Problem("path", "is required")])
        report = await run_in_threadpool(
            engine.ingest, confined(cfg, payload["path"], "import"), payload.get("kind", "events"), payload.get("format"),
            payload.get("mapping"), payload.get("source", "import"))
        return ORJSONResponse(report.as_dict())

    add_quality_routes(app, engine, admin_token, _freshen)
    add_segment_routes(app, engine, admin_token, _freshen)
    add_model_routes(app, engine, admin_token)
    add_recommend_routes(app, engine, admin_token)
    return app
