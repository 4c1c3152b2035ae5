"""The HTTP API: Segment-compatible collection, profiles, quarantine, admin.

Thin by design: parse, authenticate, validate, hand over to the Engine.
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine import Engine
from ..errors import NotFound, PersonableError, Problem, ValidationFailed
from ..events.spec import EVENT_TYPES
from ..settings import join_path
from . import ingest_routes, model_routes, profile_routes, quality_routes, recommend_routes, resolve_routes
from . import access_routes, privacy_routes, segment_routes
from .background import Background
from .collect import Collection
from .audit import AuditRelay
from .auth import Authenticator
from .collector import Collector
from .deps import quick_call
from .host import HostedEngine
from .models import Collected, Health
from .schemas import BATCH_SCHEMA, ERRORS, body, event_schema

log = logging.getLogger("personable.server")
COLLECTION_PATHS = frozenset([f"/v1/{kind}" for kind in EVENT_TYPES] + ["/v1/batch"])
# One router per domain, each behind the one admin dependency (deps.require_admin).
ROUTERS = [r.router for r in (profile_routes, ingest_routes, quality_routes, resolve_routes, segment_routes,
                              model_routes, recommend_routes, privacy_routes, access_routes)]


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description, less its 422 answers: a request that fails
    validation gets a 400 in the project's error shape (declared on every route)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for unused in ("HTTPValidationError", "ValidationError"):
            spec.get("components", {}).get("schemas", {}).pop(unused, None)
        app.openapi_schema = spec
    return app.openapi_schema


_gc_started: list[float] = []


def _log_slow_collections(phase: str, info: dict) -> None:
    """Report collections long enough to show in request latency."""
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        ms = (time.perf_counter() - _gc_started[0]) * 1000
        if ms > 20:
            log.warning("garbage collection (generation %s) took %.0f ms, collected %s", info.get("generation"), ms,
                        info.get("collected"))


def create_app(engine: Engine | HostedEngine) -> FastAPI:
    """The application over ``engine``: an :class:`Engine` in this process (the
    log worker and the scheduler run here too), or a :class:`HostedEngine` whose
    store runs in its own process (``server/host.py``)."""
    cfg = engine.config
    collector = Collector(engine, cfg.server.commit_interval_ms, cfg.server.max_batch_events)
    auth = Authenticator(cfg)
    audit = AuditRelay(engine)
    collection = Collection(engine, collector, auth)
    background = Background(engine) if isinstance(engine, Engine) else None
    health = background.health if background is not None else cast(HostedEngine, engine).health

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if background is not None:
            await run_in_threadpool(background.start)
        # Everything loaded so far lives as long as the server: keep it out of the
        # garbage collector's full passes, which otherwise walked it all and
        # stalled requests for ~0.1 s now and then.
        gc.collect()
        gc.freeze()
        gc.callbacks.append(_log_slow_collections)
        await collector.start()
        audit.start()
        yield
        await collector.stop()   # every acknowledged event is in the log before the store stops
        await audit.stop()
        if background is not None:
            await run_in_threadpool(background.stop)

    app = FastAPI(
        title="personable", version=__version__, lifespan=lifespan, default_response_class=ORJSONResponse,
        description="Segment-compatible event collection, identity stitching and unified profiles. "
                    "Collection takes a write key (publishable key); every other route but /healthz and "
                    "/v1/oauth/token needs a bearer credential holding the route's scope: the admin token, a "
                    "secret API key or an OAuth 2.0 access token (docs/security.md).",
        # operationIds are the handlers' names (get_profile, list_segments): what a generated client calls
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.engine, app.state.collector, app.state.auth = engine, collector, auth
    app.state.project, app.state.audit = cfg.name, audit
    app.state.body_timeout_s = cfg.server.body_timeout_s   # body.read_body's deadline

    @app.exception_handler(PersonableError)
    async def _personable_error(request: Request, exc: PersonableError) -> ORJSONResponse:
        body = exc.as_dict()
        if request.url.path in COLLECTION_PATHS:
            # Our shape, plus the two top-level fields Segment-style SDKs read: RudderStack's
            # raised a KeyError without them and retried a batch that can never succeed.
            body = {**body, "code": exc.code, "message": exc.message}
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
        return ORJSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> ORJSONResponse:
        details = [Problem(join_path("", e.get("loc", ())), str(e.get("msg", "invalid")).removeprefix("Value error, "))
                   for e in exc.errors()]
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

    responses = {200: {"model": Collected, "description": "Accepted and durable"}, **ERRORS}

    def collection_route(kind: str) -> None:
        async def handler(request: Request) -> ORJSONResponse:
            return ORJSONResponse(await collection.collect(request, kind))

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
        return ORJSONResponse(await collection.collect(request, None))

    @app.post("/v1/{kind}", include_in_schema=False)
    async def unknown_kind(kind: str) -> ORJSONResponse:
        raise NotFound(f"unknown call type {kind!r}; use one of {', '.join(EVENT_TYPES)} or batch",
                       [Problem("type", f"unknown type {kind!r}")])

    @app.get("/healthz", tags=["ops"], summary="Liveness and store status", response_model=Health)
    async def healthz() -> object:
        return {"status": "ok", "version": __version__, "project": cfg.name, "commits": collector.batches,
                "store_process": background is None, **await quick_call(engine, health)}

    for router in ROUTERS:
        app.include_router(router)
    app.include_router(access_routes.oauth)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
