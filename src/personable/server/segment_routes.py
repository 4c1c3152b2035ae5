"""Segments: definitions, membership and its history, refreshes, exports, RFM /
lifecycle and behavioural clusters. Thin over ``engine.segments``."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from starlette.concurrency import run_in_threadpool

from .deps import EngineDep, admin_router, freshen
from .models import (
    ClusterRequest, ClusterResult, ComputeResult, Deleted, ExportRequest, ExportResult, JSONObject, MembersPage,
    Memberships, RefreshResult, SegmentDefinition, SegmentDetail, SegmentList,
)
from .params import Int
from .paths import confined

router = admin_router("segments")


@router.get("/v1/segments", response_model=SegmentList, summary="Every segment with its size")
async def list_segments(engine: EngineDep, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return {"items": await run_in_threadpool(engine.segments.list)}


@router.get("/v1/segments/clusters/model", response_model=JSONObject,
            summary="The current cluster model: method, scores per k, descriptions, stability")
async def cluster_model(engine: EngineDep) -> object:
    return await run_in_threadpool(engine.segments.cluster_model)


@router.get("/v1/segments/{segment_id}", response_model=SegmentDetail,
            summary="A segment: definition, size, and size over time")
async def show_segment(segment_id: str, engine: EngineDep, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.segments.show, segment_id)


@router.put("/v1/segments/{segment_id}", response_model=SegmentDetail,
            summary="Define or redefine a segment (refreshed at once)")
async def put_segment(segment_id: str, body: SegmentDefinition, engine: EngineDep) -> object:
    definition = body.model_dump(exclude_unset=True)
    return await run_in_threadpool(engine.segments.create, segment_id, definition)


@router.delete("/v1/segments/{segment_id}", response_model=Deleted,
               summary="Delete a segment defined through the API (its members exit; history is kept)")
async def delete_segment(segment_id: str, engine: EngineDep) -> object:
    await run_in_threadpool(engine.segments.delete, segment_id)
    return {"deleted": segment_id}


@router.get("/v1/segments/{segment_id}/members", response_model=MembersPage,
            summary="Current members, oldest membership first (paged)")
async def segment_members(segment_id: str, engine: EngineDep, limit: Int = 100, offset: Int = 0,
                          fresh: bool = False) -> object:
    await freshen(engine, fresh)
    items = await run_in_threadpool(engine.segments.members, segment_id, max(1, min(limit, 10_000)), max(0, offset))
    return {"items": items, "limit": limit, "offset": offset}


@router.get("/v1/segments/{segment_id}/history", response_model=Memberships,
            summary="Membership spells (entered_at, exited_at), newest first; optionally for one profile")
async def segment_history(segment_id: str, engine: EngineDep, profile: str | None = None,
                          limit: Int = 200) -> object:
    items = await run_in_threadpool(engine.segments.history, profile, segment_id, max(1, min(limit, 10_000)))
    return {"items": items}


@router.get("/v1/memberships", response_model=Memberships,
            summary="Membership spells across segments, newest first: ?profile= and / or ?segment= narrow them")
async def memberships(engine: EngineDep, profile: str | None = None, segment: str | None = None,
                      limit: Int = 200, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return {"items": await run_in_threadpool(engine.segments.history, profile, segment, max(1, min(limit, 10_000)))}


@router.post("/v1/admin/segments/refresh", response_model=RefreshResult,
             summary="Recompute every segment's membership now (or ?segment=id, repeatable)")
async def refresh_segments(engine: EngineDep, segment: list[str] = Query(default=[]), cause: str = "manual",
                           fresh: bool = True) -> object:
    """`cause` is recorded on every entry and exit this refresh makes."""
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.segments.refresh, segment or None, cause)


@router.post("/v1/admin/segments/{segment_id}/export", response_model=ExportResult,
             summary="Write the members to a CSV or Parquet file on the server")
async def export_segment(segment_id: str, body: ExportRequest, engine: EngineDep) -> object:
    path = confined(engine.config, body.path, "export", "body.path")
    return await run_in_threadpool(engine.segments.export, segment_id, str(path), body.format)


@router.post("/v1/admin/segments/compute", response_model=ComputeResult,
             summary="Recompute RFM scores and segments and lifecycle stages for every profile")
async def compute_traits(engine: EngineDep, fresh: bool = True) -> object:
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.segments.compute)


@router.post("/v1/admin/segments/cluster", response_model=ClusterResult,
             summary="Fit behavioural clusters; every profile gets computed.cluster")
async def fit_clusters(engine: EngineDep, body: ClusterRequest | None = None) -> object:
    b = body or ClusterRequest()
    pca: float | int | None = int(b.pca) if b.pca is not None and b.pca >= 1 else b.pca
    return await run_in_threadpool(engine.segments.cluster, b.method, b.n_clusters, pca,
                                   tuple(b.features) if b.features else None, b.stability_boots, b.population)
