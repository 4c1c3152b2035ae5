"""What every admin and read router shares: the Engine, the one credential
check, read-your-writes, and a route class that reads bodies within our limits.

Each domain has one ``APIRouter`` (``admin_router(domain)``) whose one
dependency checks the caller's credential and scope for all of its routes:
``<domain>:read`` for GET, ``<domain>:write`` otherwise (``server/auth.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Coroutine

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import PersonableError, ServerUnavailable
from ..access.scopes import needed
from .body import parse_json, read_body
from .models import error_responses

# Admin bodies are small (a path, a rule, a few numbers): a larger one is refused
# before it is parsed, like the collection routes' max_body_bytes.
ADMIN_BODY_BYTES = 1_000_000
FRESH_WAIT_S = 30.0

ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 429, 503)

# Shown in the OpenAPI description as the bearer scheme; the router's dependency does the
# checking (in the project's error shape, with its messages).
bearer = HTTPBearer(auto_error=False, scheme_name="admin_token",
                    description="`Authorization: Bearer <token>`: the project's admin token (.personable/keys.json), "
                                "a secret API key (sk_…) or an OAuth 2.0 access token (POST /v1/oauth/token), holding "
                                "the route's scope (docs/security.md)")


# The dependencies are coroutines: FastAPI runs a plain function in a worker
# thread, a hop that cost the profile read ~0.2 ms per dependency.
async def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(engine_of)]


async def quick_call(engine: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, a call of microseconds on an in-process Engine, made right
    on the event loop (a thread hop would cost more than the work); with the
    store in its own process (``host.HostedEngine``) it is a call to that
    process, which must not block the loop, so it runs in a thread."""
    from .host import HostedEngine

    if isinstance(engine, HostedEngine):
        return await run_in_threadpool(fn, *args)
    return fn(*args)


# Routes a publishable key may call for its own visitor (server/auth.py, _check_self).
SELF_READ_ROUTES = frozenset({"/v1/recommendations/{identifier}"})


def scoped(domain: str) -> Callable[..., Coroutine[Any, Any, None]]:
    """The one credential check of a domain's router."""

    async def require_scope(request: Request, _: Annotated[Any, Depends(bearer)] = None) -> None:
        if getattr(request.state, "credentials_checked", False):   # already, before the body was read
            return
        route = request.scope.get("route")
        self_read = request.method == "GET" and getattr(route, "path", None) in SELF_READ_ROUTES
        request.state.principal = request.app.state.auth.require(
            request, needed(domain, request.method, getattr(route, "path", None)), self_read)
        request.state.credentials_checked = True

    require_scope.checks_credentials = True   # type: ignore[attr-defined]  # LimitedBodyRoute checks first
    return require_scope


async def freshen(engine: Engine, fresh: bool) -> None:
    """``fresh=true``: wait until every event accepted before this request is stored (read your writes)."""
    if fresh and not await run_in_threadpool(engine.wait_processed, None, FRESH_WAIT_S):
        raise ServerUnavailable("accepted events are not stored yet (worker behind by over 30 s); retry")


class LimitedBodyRoute(APIRoute):
    """Reads a body with the project's rules before FastAPI parses it: the size
    limit, gzip, the read timeout, UTF-8 and JSON errors as ``malformed_body``
    (FastAPI alone reads any size, with no timeout). A JSON body is taken as
    JSON whatever its Content-Type says (``curl -d`` sends a form type)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Only the fields a response had are sent back: optional ones stay absent, not null.
        kwargs.setdefault("response_model_exclude_unset", True)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _audited(self._reading_bodies(super().get_route_handler()))

    def _reading_bodies(self, handler: Callable[[Request], Coroutine[Any, Any, Response]]
                        ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if self.body_field is None:
            return handler
        checks = [d.dependency for d in self.dependencies if getattr(d.dependency, "checks_credentials", False)]

        async def read_then_handle(request: Request) -> Response:
            for check in checks:   # before reading: a stranger's body is not even buffered
                await check(request)
            raw = await read_body(request, ADMIN_BODY_BYTES)
            if raw.strip():
                parsed = parse_json(raw)
                request._body = orjson.dumps(parsed)      # what FastAPI reads next: plain JSON
                request._json = parsed
                request.scope["headers"] = [(k, v) for k, v in request.scope["headers"]
                                            if k not in (b"content-type", b"content-encoding")]
                request.scope["headers"].append((b"content-type", b"application/json"))
                if hasattr(request, "_headers"):
                    del request._headers
            else:
                request._body = b""
            return await handler(request)

        return read_then_handle


def _audited(handler: Callable[[Request], Coroutine[Any, Any, Response]]
             ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The call, then its audit record (server/audit.py), however it ended."""

    async def audit_then_answer(request: Request) -> Response:
        relay = getattr(request.app.state, "audit", None)
        try:
            response = await handler(request)
        except PersonableError as exc:
            if relay is not None:
                relay.add(request, exc.status)
            raise
        except Exception:
            if relay is not None:
                relay.add(request, 500)
            raise
        if relay is not None:
            relay.add(request, response.status_code)
        return response

    return audit_then_answer


def admin_router(domain: str) -> APIRouter:
    """One domain's router: the credential and scope check on every route, our errors documented, bodies read
    within limits."""
    return APIRouter(tags=[domain], dependencies=[Depends(scoped(domain))], responses=ERRORS,
                     route_class=LimitedBodyRoute)
