"""Recommendations. Thin over ``engine.recommend``.

``GET /v1/recommendations/{identifier}`` is the serving path: the profile's
precomputed list adjusted with the request's context, answered from memory
and the online store (no offline-store query), on the event loop's own thread
because it is microseconds of work (in a thread when the store runs in its own
process: ``deps.quick_call``).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ..access.keys import PUBLISHABLE
from ..access.scopes import SELF_READ
from ..errors import Forbidden
from .auth import ANONYMOUS
from .deps import EngineDep, admin_router, quick_call
from .models import CatalogImport, ItemsImport, Leaderboard, RecommendEvaluateRequest, Recommendations, TrainedRecommender
from .params import OptionalInt
from .paths import confined

router = admin_router("recommendations")


def ids(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@router.get("/v1/recommendations/{identifier}", response_model=Recommendations,
            summary="Top items for a profile, with scores and reasons, adjusted to the request's context")
async def recommendations(identifier: str, request: Request, engine: EngineDep, placement: str | None = None,
                          n: OptionalInt = None,
                          viewed: str | None = None, cart: str | None = None,
                          device: str | None = None) -> ORJSONResponse:
    """`viewed` / `cart`: comma-separated item ids the page knows about (newest first);
    `device`: the device in hand (e.g. mobile). Defaults come from the placement."""
    context = {"viewed": ids(viewed), "cart": ids(cart), "device": device}
    # The serving path: sent as computed (shape checked in tests/test_openapi_client.py).
    if getattr(request.state.principal, "kind", None) == PUBLISHABLE and identifier.startswith(ANONYMOUS):
        # Anyone holding the page's key can link an anonymous id to a user id (identify):
        # a known user's data is read only with that user's token (user_id:<id> + X-User-Token).
        doc = await quick_call(engine, engine.profile, identifier, 0)
        if any(i["kind"] == "user_id" for i in doc.get("identities") or []):
            raise Forbidden("this visitor is a known user: read user_id:<id> with the X-User-Token your backend "
                            "issues", missing_scope=SELF_READ)
    return ORJSONResponse(await quick_call(engine, engine.recommend.recommend, identifier, placement, n, context))


@router.post("/v1/admin/recommend/train", response_model=TrainedRecommender,
             summary="Train the generators and the ranker, register a version, precompute every profile's list")
async def train_recommender(engine: EngineDep) -> object:
    return await run_in_threadpool(engine.recommend.train)


@router.post("/v1/admin/recommend/evaluate", response_model=Leaderboard,
             summary="The leaderboard: every generator and the ranker, offline")
async def evaluate_recommender(engine: EngineDep, body: RecommendEvaluateRequest | None = None) -> object:
    b = body or RecommendEvaluateRequest()
    return await run_in_threadpool(engine.recommend.evaluate, b.split, b.k, b.ratio)


@router.post("/v1/admin/items/import", response_model=CatalogImport,
             summary="Insert or update catalog items from a file on the server's disk")
async def import_items(body: ItemsImport, engine: EngineDep) -> object:
    return await run_in_threadpool(engine.recommend.import_catalog,
                                   confined(engine.config, body.path, "import", "body.path"))
