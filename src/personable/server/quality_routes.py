"""HTTP routes for data quality and identity resolution (admin token required).

Thin: parse, authenticate, call the Engine's services in a worker thread.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from fastapi import FastAPI, Query, Request
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import Problem, ValidationFailed
from .body import check_admin, parse_json, read_body
from .params import Int
from .schemas import ERRORS, body

DECISION_SCHEMA = {"type": "object", "required": ["left", "right", "decision"], "properties": {
    "left": {"type": "string", "description": "One profile id of the pair"},
    "right": {"type": "string", "description": "The other profile id"},
    "decision": {"enum": ["accept", "reject"]},
    "actor": {"type": "string", "description": "Who decided (kept in the audit trail)"}}}
UNDO_SCHEMA = {"type": "object", "required": ["profile"], "properties": {
    "profile": {"type": "string", "description": "Id of the profile that was merged away"},
    "actor": {"type": "string"}}}


async def _json_body(request: Request) -> dict[str, Any]:
    payload = parse_json(await read_body(request, 100_000))
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object", [Problem("$", "must be a JSON object")])
    return payload


def _strings(payload: dict[str, Any], *names: str) -> list[str]:
    missing = [n for n in names if not isinstance(payload.get(n), str) or not payload[n].strip()]
    if missing:
        raise ValidationFailed("missing fields", [Problem(n, "is required and must be a string") for n in missing])
    return [payload[n] for n in names]


def add_quality_routes(app: FastAPI, engine: Engine, admin_token: str | None,
                       freshen: Callable[[bool], Awaitable[None]]) -> None:
    @app.get("/v1/quality", tags=["quality"], responses=ERRORS,
             summary="Data-quality report: completeness, validity, uniqueness, freshness per field and source")
    async def quality_report(request: Request, field: list[str] = Query(default=[]), save: bool = True,
                             fresh: bool = False) -> ORJSONResponse:
        """Computed now over the stored profiles; `save=true` keeps it in the history, and
        `regressions` lists what got worse since the previous saved report."""
        check_admin(request, admin_token)
        await freshen(fresh)
        return ORJSONResponse(await run_in_threadpool(engine.quality.report, field or None, save))

    @app.get("/v1/quality/history", tags=["quality"], responses=ERRORS, summary="Past quality reports, newest first")
    async def quality_history(request: Request, limit: Int = 10) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse({"items": await run_in_threadpool(engine.quality.history, max(1, min(limit, 100)))})

    @app.post("/v1/admin/quality/clean", tags=["quality"], responses=ERRORS,
              summary="Re-standardize every stored trait and amount with the current settings")
    async def quality_clean(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse(await run_in_threadpool(engine.quality.clean))

    @app.post("/v1/admin/quality/impute", tags=["quality"], responses=ERRORS,
              summary="Fill missing values by each field's policy (marked as imputed)")
    async def quality_impute(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse(await run_in_threadpool(engine.quality.impute))

    @app.post("/v1/admin/resolve", tags=["identity"], responses=ERRORS,
              summary="Run probabilistic identity resolution over the stored profiles")
    async def resolve_run(request: Request, fresh: bool = True) -> ORJSONResponse:
        check_admin(request, admin_token)
        await freshen(fresh)
        return ORJSONResponse(await run_in_threadpool(engine.resolution.run))

    @app.get("/v1/resolve/review", tags=["identity"], responses=ERRORS,
             summary="Scored pairs: the review queue by default, or any status")
    async def resolve_review(request: Request, status: str = "review", limit: Int = 50, offset: Int = 0) -> ORJSONResponse:
        """`status`: review (between the thresholds, waiting for a person), merged, accepted,
        rejected, blocked (stopped by a guard), undone, or all."""
        check_admin(request, admin_token)
        items = await run_in_threadpool(engine.resolution.review, status, max(1, min(limit, 1000)), max(0, offset))
        return ORJSONResponse({"items": items, "status": status, "limit": limit, "offset": offset})

    @app.post("/v1/resolve/review/decision", tags=["identity"], responses=ERRORS,
              summary="Accept (merge) or reject (keep apart) a pair", openapi_extra=body(DECISION_SCHEMA))
    async def resolve_decide(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        payload = await _json_body(request)
        left, right, decision = _strings(payload, "left", "right", "decision")
        if decision not in ("accept", "reject"):
            raise ValidationFailed("decision must be accept or reject", [Problem("decision", "must be accept or reject")])
        result = await run_in_threadpool(engine.resolution.decide, left, right, decision == "accept",
                                         payload.get("actor") or "api")
        return ORJSONResponse(result)

    @app.get("/v1/resolve/explain/{identifier}", tags=["identity"], responses=ERRORS,
             summary="Why a profile holds what it holds: its probabilistic merges and their match weights")
    async def resolve_explain(identifier: str, request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse(await run_in_threadpool(engine.resolution.explain, identifier))

    @app.post("/v1/resolve/undo", tags=["identity"], responses=ERRORS,
              summary="Undo a probabilistic merge: the profile is split back out and kept apart",
              openapi_extra=body(UNDO_SCHEMA))
    async def resolve_undo(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        payload = await _json_body(request)
        (profile,) = _strings(payload, "profile")
        return ORJSONResponse(await run_in_threadpool(engine.resolution.undo, profile, payload.get("actor") or "api"))
