"""Probabilistic identity resolution: runs, the review queue, decisions, explanations, undo."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from .deps import EngineDep, admin_router, freshen
from .models import DecisionRequest, Explanation, JSONObject, ResolutionSummary, ReviewPage, UndoRequest
from .params import Int

router = admin_router("identity")


@router.post("/v1/admin/resolve", response_model=ResolutionSummary,
             summary="Run probabilistic identity resolution over the stored profiles")
async def resolve_run(engine: EngineDep, actor: str = "resolver", fresh: bool = True) -> object:
    """`actor`: who ran it (kept in the audit trail of the merges it makes)."""
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.resolution.run, actor)


@router.get("/v1/resolve/review", response_model=ReviewPage,
            summary="Scored pairs: the review queue by default, or any status")
async def resolve_review(engine: EngineDep, status: str = "review", limit: Int = 50, offset: Int = 0) -> object:
    """`status`: review (between the thresholds, waiting for a person), merged, accepted,
    rejected, blocked (stopped by a guard), undone, or all."""
    items = await run_in_threadpool(engine.resolution.review, status, max(1, min(limit, 1000)), max(0, offset))
    return {"items": items, "status": status, "limit": limit, "offset": offset}


@router.post("/v1/resolve/review/decision", response_model=JSONObject,
             summary="Accept (merge) or reject (keep apart) a pair")
async def resolve_decide(body: DecisionRequest, engine: EngineDep) -> object:
    return await run_in_threadpool(engine.resolution.decide, body.left, body.right, body.decision == "accept",
                                   body.actor or "api")


@router.get("/v1/resolve/explain/{identifier}", response_model=Explanation,
            summary="Why a profile holds what it holds: its probabilistic merges and their match weights")
async def resolve_explain(identifier: str, engine: EngineDep) -> object:
    return await run_in_threadpool(engine.resolution.explain, identifier)


@router.post("/v1/resolve/undo", response_model=JSONObject,
             summary="Undo a probabilistic merge: the profile is split back out and kept apart")
async def resolve_undo(body: UndoRequest, engine: EngineDep) -> object:
    return await run_in_threadpool(engine.resolution.undo, body.profile, body.actor or "api")
