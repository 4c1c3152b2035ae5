"""Who is calling, and may they: credentials to a :class:`Principal`, scope
checks, a publishable key's reads of its own visitor, rate limits.

Credentials, in ``Authorization``:

- ``Bearer <admin token>`` (``.personable/keys.json``): scope ``admin``;
- ``Bearer sk_…`` / ``Bearer pk_…``, or the key as HTTP Basic user (as
  Segment's SDKs send write keys): an API key (``access/keys.py``);
- ``Bearer <JWT>``: an OAuth 2.0 access token from ``POST /v1/oauth/token``,
  carrying the scopes asked for (at most its key's, and only while its key lives);
- a write key of ``keys.json``: a publishable key of its source (older projects).
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from ..access.keys import PUBLISHABLE, SECRET, ApiKey, KeyRing, can_collect, key_id_of
from ..access.limits import RateLimiter
from ..access.scopes import ADMIN, COLLECT, PUBLISHABLE_SCOPES, SELF_READ, grants
from ..access.tokens import check_user_token, project_secret, read_access_token
from ..errors import Forbidden, RateLimited, Unauthorized

if TYPE_CHECKING:
    from ..config import Config

ADMIN_KIND, TOKEN_KIND = "admin", "token"
USER_TOKEN_HEADER = "x-user-token"
ANONYMOUS, USER = "anonymous_id:", "user_id:"


@dataclass(frozen=True)
class Principal:
    kind: str                  # admin | secret | publishable | token
    key_id: str
    scopes: tuple[str, ...]
    source: str | None = None  # for keys that collect
    rate_limit: float = 0.0


class Authenticator:
    def __init__(self, cfg: "Config"):
        self.cfg = cfg
        self.admin_token = cfg.admin_token()
        self.write_keys = cfg.write_keys()        # key -> source: publishable keys of older projects
        self.keyring = KeyRing(cfg.state_dir)
        self.limiter = RateLimiter()
        self._secrets: dict[str, bytes] = {}

    def secret(self, name: str) -> bytes:
        if name not in self._secrets:
            self._secrets[name] = project_secret(self.cfg.state_dir, name)
        return self._secrets[name]

    # -- credentials --------------------------------------------------------------------------
    def _of_key(self, presented: str) -> Principal | None:
        if key_id_of(presented):
            key = self.keyring.verify(presented)
            if key is None:
                raise Unauthorized("unknown or revoked API key")
            return _principal(key)
        for known, source in self.write_keys.items():
            if hmac.compare_digest(known.encode(), presented.encode()):
                return Principal(PUBLISHABLE, f"write_key:{source}", PUBLISHABLE_SCOPES, source)
        return None

    def principal(self, request: Request) -> Principal:
        """The caller, rate-limited; Unauthorized without a valid credential."""
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        found: Principal | None = None
        if scheme.lower() == "bearer" and value:
            if self.admin_token and hmac.compare_digest(value.encode(), self.admin_token.encode()):
                found = Principal(ADMIN_KIND, ADMIN_KIND, (ADMIN,))
            elif value.count(".") == 2 and not key_id_of(value):
                found = self._of_token(value)
            else:
                found = self._of_key(value)
        elif scheme.lower() == "basic" and value:
            found = self._of_key(_basic_user(value))
        if found is None:
            raise Unauthorized("missing or unknown credentials: send `Authorization: Bearer <admin token, API key "
                               "or access token>` (docs/security.md)")
        self.limit(found)
        return found

    def _of_token(self, token: str) -> Principal:
        claims = read_access_token(self.secret("token_secret"), token, self.cfg.name)
        key = self.keyring.get(claims.key_id)
        if key is None or not key.active:
            raise Unauthorized("the access token's key was revoked")
        held = tuple(s for s in claims.scopes if grants(key.scopes, s))
        return Principal(TOKEN_KIND, key.key_id, held, key.source, key.rate_limit)

    @staticmethod
    def principal_of_key(key: ApiKey) -> Principal:
        return _principal(key)

    def limit(self, p: Principal) -> None:
        wait = self.limiter.wait_for(p.key_id, p.rate_limit)
        if wait:
            retry = max(1, int(wait + 0.999))
            raise RateLimited(f"key {p.key_id} is over its limit of {p.rate_limit:g} requests/s; retry in {retry} s",
                              retry_after=retry)

    # -- collection -----------------------------------------------------------------------------
    def collecting_source(self, presented: str | None) -> str:
        """The source events sent with key ``presented`` are attributed to."""
        if not presented:
            raise Unauthorized("missing write key: send it as the HTTP Basic auth user name (as Segment does)")
        found = self._of_key(presented)
        if found is None:
            raise Unauthorized("unknown write key")
        if COLLECT not in found.scopes:
            raise Forbidden(f"key {found.key_id} may not send events (it lacks scope {COLLECT})",
                            missing_scope=COLLECT)
        self.limit(found)
        return found.source or "server"

    # -- scopes ------------------------------------------------------------------------------------
    def require(self, request: Request, scope: str, self_read: bool = False) -> Principal:
        """The caller, holding ``scope``; or a publishable key reading its own visitor's data (``self_read``)."""
        p = self.principal(request)
        request.state.principal = p        # who it was, for the audit record, even when refused below
        if grants(p.scopes, scope):
            return p
        if self_read and SELF_READ in p.scopes:
            self._check_self(request, p)
            return p
        raise Forbidden(f"this route needs scope {scope}; the {p.kind} credential {p.key_id} holds "
                        f"{', '.join(p.scopes) or 'none'}", missing_scope=scope)

    def _check_self(self, request: Request, p: Principal) -> None:
        identifier = str(request.path_params.get("identifier", ""))
        if identifier.startswith(ANONYMOUS) and len(identifier) > len(ANONYMOUS):
            return
        if identifier.startswith(USER) and len(identifier) > len(USER):
            if check_user_token(self.secret("user_token_secret"), identifier[len(USER):],
                                request.headers.get(USER_TOKEN_HEADER)):
                return
            raise Forbidden("a publishable key reads user_id:<id> only with that user's X-User-Token "
                            "(issued by your backend: POST /v1/auth/user-token)", missing_scope=SELF_READ)
        raise Forbidden("a publishable key reads only its own visitor's data: ask for anonymous_id:<id>, or for "
                        "user_id:<id> with the X-User-Token your backend issues", missing_scope=SELF_READ)


def _principal(key: ApiKey) -> Principal:
    return Principal(key.kind if key.kind in (PUBLISHABLE, SECRET) else SECRET, key.key_id, key.scopes,
                     key.source if can_collect(key) else None, key.rate_limit)


def _basic_user(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8").split(":", 1)[0]
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("Authorization header is not valid Basic auth") from exc
