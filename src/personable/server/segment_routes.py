"""HTTP routes for segments (admin token required). Thin over ``engine.segments``."""

from __future__ import annotations

from typing import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import NotFound, Problem, ValidationFailed
from .body import check_admin, read_object
from .params import Int
from .paths import confined
from .schemas import ERRORS, body

SEGMENT_SCHEMA = {"type": "object", "required": ["rule"], "properties": {
    "name": {"type": "string"}, "description": {"type": "string"},
    "rule": {"type": "object", "description": "A condition: trait / computed / event / in_segment / all / any / not "
                                              "(see docs/segments.md)"}}}
CLUSTER_SCHEMA = {"type": "object", "properties": {
    "method": {"enum": ["kmeans", "gmm", "agglomerative", "dbscan", "hdbscan"]},
    "n_clusters": {"oneOf": [{"const": "auto"}, {"type": "integer", "minimum": 2}]},
    "pca": {"type": "number"}, "features": {"type": "array", "items": {"type": "string"}},
    "population": {"enum": ["customers", "all"]}, "stability_boots": {"type": "integer", "minimum": 0}}}
EXPORT_SCHEMA = {"type": "object", "required": ["path"], "properties": {
    "path": {"type": "string", "description": "A file in the server's export folder (server.export_dir)"}, "format": {"enum": ["csv", "parquet"]}}}


def add_segment_routes(app: FastAPI, engine: Engine, admin_token: str | None,
                       freshen: Callable[[bool], Awaitable[None]]) -> None:
    @app.get("/v1/segments", tags=["segments"], responses=ERRORS, summary="Every segment with its size")
    async def list_segments(request: Request, fresh: bool = False) -> ORJSONResponse:
        check_admin(request, admin_token)
        await freshen(fresh)
        return ORJSONResponse({"items": await run_in_threadpool(engine.segments.list)})

    @app.get("/v1/segments/{segment_id}", tags=["segments"], responses=ERRORS,
             summary="A segment: definition, size, and size over time")
    async def show_segment(segment_id: str, request: Request, fresh: bool = False) -> ORJSONResponse:
        check_admin(request, admin_token)
        await freshen(fresh)
        return ORJSONResponse(await run_in_threadpool(engine.segments.show, segment_id))

    @app.put("/v1/segments/{segment_id}", tags=["segments"], responses=ERRORS, openapi_extra=body(SEGMENT_SCHEMA),
             summary="Define or redefine a segment (refreshed at once)")
    async def put_segment(segment_id: str, request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        payload = await read_object(request, 200_000)
        return ORJSONResponse(await run_in_threadpool(engine.segments.create, segment_id, payload))

    @app.delete("/v1/segments/{segment_id}", tags=["segments"], responses=ERRORS,
                summary="Delete a segment defined through the API (its members exit; history is kept)")
    async def delete_segment(segment_id: str, request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        await run_in_threadpool(engine.segments.delete, segment_id)
        return ORJSONResponse({"deleted": segment_id})

    @app.get("/v1/segments/{segment_id}/members", tags=["segments"], responses=ERRORS,
             summary="Current members, oldest membership first (paged)")
    async def segment_members(segment_id: str, request: Request, limit: Int = 100, offset: Int = 0,
                              fresh: bool = False) -> ORJSONResponse:
        check_admin(request, admin_token)
        await freshen(fresh)
        items = await run_in_threadpool(engine.segments.members, segment_id, max(1, min(limit, 10_000)), max(0, offset))
        return ORJSONResponse({"items": items, "limit": limit, "offset": offset})

    @app.get("/v1/segments/{segment_id}/history", tags=["segments"], responses=ERRORS,
             summary="Membership spells (entered_at, exited_at), newest first; optionally for one profile")
    async def segment_history(segment_id: str, request: Request, profile: str | None = None,
                              limit: Int = 200) -> ORJSONResponse:
        check_admin(request, admin_token)
        items = await run_in_threadpool(engine.segments.history, profile, segment_id, max(1, min(limit, 10_000)))
        return ORJSONResponse({"items": items})

    @app.post("/v1/admin/segments/refresh", tags=["segments"], responses=ERRORS,
              summary="Recompute every segment's membership now (or ?segment=id, repeatable)")
    async def refresh_segments(request: Request, fresh: bool = True) -> ORJSONResponse:
        check_admin(request, admin_token)
        await freshen(fresh)
        ids = request.query_params.getlist("segment") or None
        return ORJSONResponse(await run_in_threadpool(engine.segments.refresh, ids, "manual"))

    @app.post("/v1/admin/segments/{segment_id}/export", tags=["segments"], responses=ERRORS,
              openapi_extra=body(EXPORT_SCHEMA), summary="Write the members to a CSV or Parquet file on the server")
    async def export_segment(segment_id: str, request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        payload = await read_object(request, 200_000)
        if not isinstance(payload.get("path"), str):
            raise ValidationFailed("body needs a `path`", [Problem("path", "is required")])
        return ORJSONResponse(await run_in_threadpool(engine.segments.export, segment_id,
                                                      str(confined(engine.config, payload["path"], "export")),
                                                      payload.get("format")))

    @app.post("/v1/admin/segments/compute", tags=["segments"], responses=ERRORS,
              summary="Recompute RFM scores and segments and lifecycle stages for every profile")
    async def compute_traits(request: Request, fresh: bool = True) -> ORJSONResponse:
        check_admin(request, admin_token)
        await freshen(fresh)
        return ORJSONResponse(await run_in_threadpool(engine.segments.compute))

    @app.get("/v1/profiles/{identifier}/history", tags=["profiles"], responses=ERRORS,
             summary="A profile's segment memberships over time and its lifecycle / RFM transitions")
    async def profile_history(identifier: str, request: Request, fresh: bool = False) -> ORJSONResponse:
        check_admin(request, admin_token)
        await freshen(fresh)
        pid = await run_in_threadpool(engine.resolve, identifier)
        if pid is None:
            raise NotFound(f"no profile for {identifier!r}")
        segments = await run_in_threadpool(engine.segments.history, pid, None, 1000)
        computed = await run_in_threadpool(engine.segments.transitions, pid)
        return ORJSONResponse({"profile_id": pid, "segments": segments, "computed": computed})

    @app.post("/v1/admin/segments/cluster", tags=["segments"], responses=ERRORS,
              openapi_extra=body(CLUSTER_SCHEMA),
              summary="Fit behavioural clusters; every profile gets computed.cluster")
    async def fit_clusters(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        payload = await read_object(request, 200_000)
        return ORJSONResponse(await run_in_threadpool(
            engine.segments.cluster, payload.get("method", "kmeans"), payload.get("n_clusters", "auto"),
            payload.get("pca"), tuple(payload["features"]) if payload.get("features") else None,
            int(payload.get("stability_boots", 5)), payload.get("population", "customers")))

    @app.get("/v1/segments/clusters/model", tags=["segments"], responses=ERRORS,
             summary="The current cluster model: method, scores per k, descriptions, stability")
    async def cluster_model(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        from ..segments.clusters_service import ClusterJobs

        _, meta = await run_in_threadpool(ClusterJobs(engine).model)
        return ORJSONResponse(meta)

