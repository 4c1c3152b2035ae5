"""OAuth 2.0 client credentials (RFC 6749, section 4.4) and user tokens.

``POST /v1/oauth/token`` trades a secret key (client id: its ``sk_<id>``,
client secret: the whole key, as HTTP Basic or form fields) for a short-lived
access token carrying the scopes asked for (``scope=a b``, at most the key's).
Its answers and errors follow the RFC (``{"error": "invalid_client"}``), not
the project's error shape: OAuth client libraries read those.

``POST /v1/auth/user-token`` gives a company's backend the ``X-User-Token`` its
page sends with a publishable key to read that user's own recommendations.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import ORJSONResponse

from ..access.keys import SECRET
from ..access.scopes import grants
from ..access.tokens import issue_access_token, user_token
from ..errors import PersonableError, Unauthorized
from .body import read_body
from .deps import admin_router
from .privacy_models import AccessTokenAnswer, UserTokenAnswer, UserTokenRequest

oauth = APIRouter(tags=["oauth"])
router = admin_router("profiles")
FORM_BYTES = 16_384


def _oauth_error(status: int, error: str, description: str) -> ORJSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="personable"'
    return ORJSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _form(raw: bytes, content_type: str) -> dict[str, str]:
    if "json" in content_type:
        data = orjson.loads(raw or b"{}")
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}


@oauth.post("/v1/oauth/token", response_model=AccessTokenAnswer,
            summary="OAuth 2.0 client credentials: a secret key for a short-lived access token with scopes",
            responses={400: {"description": "invalid_request, unsupported_grant_type or invalid_scope (RFC 6749)"},
                       401: {"description": "invalid_client (RFC 6749)"}})
async def token(request: Request) -> ORJSONResponse:
    """Form fields (`application/x-www-form-urlencoded`): `grant_type=client_credentials`, `scope` (optional,
    space-separated), and `client_id` / `client_secret` unless sent as HTTP Basic."""
    auth = request.app.state.auth
    try:
        raw = await read_body(request, FORM_BYTES)
        form = _form(raw, request.headers.get("content-type", ""))
    except (PersonableError, ValueError, UnicodeDecodeError):
        return _oauth_error(400, "invalid_request", "the body must be a form (or JSON object) of the token request")
    client_id, secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return _oauth_error(401, "invalid_client", "the Authorization header is not valid Basic auth")
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
    key = auth.keyring.verify(secret or "")
    if key is None or key.key_id != client_id or key.kind != SECRET:
        return _oauth_error(401, "invalid_client", "unknown client, wrong secret, or a revoked or publishable key")
    asked = (form.get("scope") or "").split() or list(key.scopes)
    beyond = [s for s in asked if not grants(key.scopes, s)]
    if beyond:
        return _oauth_error(400, "invalid_scope", f"the key does not hold {', '.join(beyond)}")
    try:
        auth.limit(auth.principal_of_key(key))
    except PersonableError as exc:
        return ORJSONResponse(exc.as_dict(), status_code=exc.status,
                              headers={"Retry-After": str(exc.extra.get("retry_after", 1))})
    access, ttl = issue_access_token(auth.secret("token_secret"), key.key_id, asked, request.app.state.project)
    # A credential was issued: that is an audit record, by the key that asked for it.
    request.state.principal = auth.principal_of_key(key)
    request.app.state.audit.add(request, 200)
    return ORJSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": ttl,
                           "scope": " ".join(asked)}, headers={"Cache-Control": "no-store"})


@router.post("/v1/auth/user-token", response_model=UserTokenAnswer,
             summary="The X-User-Token a page sends with a publishable key to read this user's own data")
async def issue_user_token(body: UserTokenRequest, request: Request) -> dict[str, Any]:
    if not body.user_id.strip():
        raise Unauthorized("user_id is empty")
    return {"user_id": body.user_id, "header": "X-User-Token",
            "token": user_token(request.app.state.auth.secret("user_token_secret"), body.user_id)}
