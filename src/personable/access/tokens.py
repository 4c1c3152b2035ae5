"""Tokens: OAuth 2.0 client-credentials access tokens (short-lived JWTs
signed with the project's secret) and user tokens (a page's proof that a user
id is its visitor's own).

Both are keyed by secrets kept in ``.personable/keys.json`` (owner-only), made
on first use under a lock so that every process of a project signs with the
same one (or taken from ``PERSONABLE_TOKEN_SECRET`` / ``PERSONABLE_USER_TOKEN_SECRET``).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import KEYS_FILE
from ..errors import Unauthorized

TOKEN_TTL_S = 900          # an access token lives 15 minutes: a revoked key's tokens die with it soon
ISSUER = "personable"


def project_secret(state_dir: Path, name: str) -> bytes:
    """The project secret ``name`` (made once, shared by every process)."""
    env = os.environ.get(f"PERSONABLE_{name.upper()}")
    if env:
        return env.encode()
    data = read_keys(state_dir)
    if name not in data:
        data = update_keys(state_dir, lambda d: d if name in d else {**d, name: secrets.token_urlsafe(32)})
    return str(data[name]).encode()


def read_keys(state_dir: Path) -> dict[str, Any]:
    path = state_dir / KEYS_FILE
    return dict(json.loads(path.read_text())) if path.exists() else {}


def update_keys(state_dir: Path, change: "Callable[[dict[str, Any]], dict[str, Any]]") -> dict[str, Any]:
    """``keys.json`` changed by ``change`` (given what it holds now), under a lock every process of the
    project takes, written whole (owner-only) in place of the old; what it holds after."""
    path = state_dir / KEYS_FILE
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(state_dir / "keys.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = read_keys(state_dir)        # another process may have changed it while we waited
        data = change(dict(before))
        if data != before:
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    return data


@dataclass(frozen=True)
class AccessToken:
    key_id: str
    scopes: tuple[str, ...]
    expires_at: float


def issue_access_token(secret: bytes, key_id: str, scopes: list[str], project: str,
                       ttl_s: int = TOKEN_TTL_S) -> tuple[str, int]:
    import jwt

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": project, "sub": key_id, "scope": " ".join(scopes), "iat": now,
              "exp": now + ttl_s, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, secret, algorithm="HS256"), ttl_s


def read_access_token(secret: bytes, token: str, project: str) -> AccessToken:
    """A valid token's claims; Unauthorized for a tampered, expired or foreign one."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], audience=project, issuer=ISSUER,
                                            options={"require": ["exp", "sub", "scope", "iat"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired: get a new one from POST /v1/oauth/token") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the access token is not valid: {exc}") from None
    return AccessToken(str(claims["sub"]), tuple(str(claims["scope"]).split()), float(claims["exp"]))


def user_token(secret: bytes, user_id: str) -> str:
    """What a page sends (``X-User-Token``) to read user ``user_id``'s own data with a publishable key.
    Made by the company's backend (``personable keys user-token``, ``POST /v1/auth/user-token``)."""
    mac = hmac.new(secret, b"user:" + user_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def check_user_token(secret: bytes, user_id: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(user_token(secret, user_id), str(token))
