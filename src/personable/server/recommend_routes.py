"""HTTP routes for recommendations. Thin over ``engine.recommend``.

``GET /v1/recommendations/{identifier}`` is the serving path: the profile's
precomputed list adjusted with the request's context, answered from memory
and the online store (no offline-store query), on the event loop's own thread
because it is microseconds of work.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import Problem, ValidationFailed
from .body import check_admin, read_object
from .params import OptionalInt
from .paths import confined
from .schemas import ERRORS, body

IMPORT_SCHEMA = {"type": "object", "required": ["path"], "properties": {
    "path": {"type": "string", "description": "A catalog file (CSV, JSON lines, Parquet) in the server's import folder (server.import_dir)"}}}
EVALUATE_SCHEMA = {"type": "object", "properties": {
    "split": {"enum": ["temporal", "random"]}, "k": {"type": "integer", "minimum": 1, "maximum": 100},
    "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}}


def _ids(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def add_recommend_routes(app: FastAPI, engine: Engine, admin_token: str | None) -> None:
    @app.get("/v1/recommendations/{identifier}", tags=["recommendations"], responses=ERRORS,
             summary="Top items for a profile, with scores and reasons, adjusted to the request's context")
    async def recommendations(identifier: str, request: Request, placement: str | None = None, n: OptionalInt = None,
                              viewed: str | None = None, cart: str | None = None,
                              device: str | None = None) -> ORJSONResponse:
        """`viewed` / `cart`: comma-separated item ids the page knows about (newest first);
        `device`: the device in hand (e.g. mobile). Defaults come from the placement."""
        check_admin(request, admin_token)
        context = {"viewed": _ids(viewed), "cart": _ids(cart), "device": device}
        return ORJSONResponse(engine.recommend.recommend(identifier, placement, n, context))

    @app.post("/v1/admin/recommend/train", tags=["recommendations"], responses=ERRORS,
              summary="Train the generators and the ranker, register a version, precompute every profile's list")
    async def train(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse(await run_in_threadpool(engine.recommend.train))

    @app.post("/v1/admin/recommend/evaluate", tags=["recommendations"], responses=ERRORS,
              openapi_extra=body(EVALUATE_SCHEMA), summary="The leaderboard: every generator and the ranker, offline")
    async def evaluate(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        p = await read_object(request, 20_000, empty_ok=True)
        k = p.get("k", 10)
        ratio = p.get("ratio", 0.8)
        if isinstance(k, bool) or not isinstance(k, int):
            raise ValidationFailed("k must be a whole number", [Problem("k", "must be a whole number")])
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            raise ValidationFailed("ratio must be between 0 and 1", [Problem("ratio", "must be between 0 and 1")])
        return ORJSONResponse(await run_in_threadpool(engine.recommend.evaluate, str(p.get("split", "temporal")), k,
                                                      float(ratio)))

    @app.post("/v1/admin/items/import", tags=["recommendations"], responses=ERRORS, openapi_extra=body(IMPORT_SCHEMA),
              summary="Insert or update catalog items from a file on the server's disk")
    async def import_items(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        p = await read_object(request, 20_000, empty_ok=True)
        if not isinstance(p.get("path"), str):
            raise ValidationFailed("path is required", [Problem("path", "must be a file path")])
        return ORJSONResponse(await run_in_threadpool(engine.recommend.import_catalog,
                                                      confined(engine.config, p["path"], "import")))
