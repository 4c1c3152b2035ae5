"""Profiles: the unified document, its segment history and computed-trait transitions."""

from __future__ import annotations

from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import NotFound
from ..profiles.document import RECENT_EVENTS
from .deps import EngineDep, admin_router, freshen
from .models import ProfileDocument, ProfileHistory, Transitions
from .params import Int

router = admin_router("profiles")


@router.get("/v1/profiles/{identifier}", response_model=ProfileDocument,
            summary="A unified profile by any identifier (profile id, userId, anonymousId, email:…, phone:…)")
async def get_profile(identifier: str, engine: EngineDep, events: Int = 20, fresh: bool = False) -> ORJSONResponse:
    """`events`: how many recent events (at most 50). `fresh=true` waits until every event
    accepted before this request is stored (read your writes)."""
    await freshen(engine, fresh)
    doc = await run_in_threadpool(engine.profile, identifier, max(0, min(events, RECENT_EVENTS)))
    # The request path: the stored document goes out as it is (its shape is the
    # model above, checked against real answers in tests/test_openapi_client.py).
    return ORJSONResponse(doc)


@router.get("/v1/profiles/{identifier}/history", response_model=ProfileHistory,
            summary="A profile's segment memberships over time and its lifecycle / RFM transitions")
async def profile_history(identifier: str, engine: EngineDep, limit: Int = 1000, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    pid = await run_in_threadpool(engine.resolve, identifier)
    if pid is None:
        raise NotFound(f"no profile for {identifier!r}")
    segments = await run_in_threadpool(engine.segments.history, pid, None, max(1, min(limit, 10_000)))
    computed = await run_in_threadpool(engine.segments.transitions, pid)
    return {"profile_id": pid, "segments": segments, "computed": computed}


@router.get("/v1/profiles/{identifier}/transitions", response_model=Transitions,
            summary="A profile's computed traits over time (lifecycle_stage, rfm_segment, ...); ?key= for one")
async def profile_transitions(identifier: str, engine: EngineDep, key: str | None = None,
                              fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return {"items": await run_in_threadpool(engine.segments.transitions, identifier, key)}
