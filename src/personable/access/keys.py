"""API keys, stored hashed (``.personable/api_keys.json``).

A key reads ``pk_<id>_<secret>`` (publishable: safe in a web page) or
``sk_<id>_<secret>`` (secret: server to server, with scopes). The file keeps
each key's SHA-256, never the key: a key is shown once, when it is made. The
id in the key finds its record; the hash decides (compared in constant time).
32 random bytes need no slow hash: nobody enumerates them.

The file is the one place keys live, read by every process of a project (the
HTTP process checks keys without asking the store): it is reread when it
changes, and written whole under a lock, replaced atomically, owner-only.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..errors import NotFound, ValidationFailed
from .scopes import COLLECT, PUBLISHABLE_SCOPES, check_scopes

KEYS_FILE = "api_keys.json"
PUBLISHABLE, SECRET = "publishable", "secret"
PREFIX = {PUBLISHABLE: "pk", SECRET: "sk"}


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    kind: str                  # publishable | secret
    name: str
    scopes: tuple[str, ...]
    source: str                # the source its collected events are attributed to
    rate_limit: float          # requests per second (0: unlimited)
    created_at: str
    revoked_at: str | None = None
    hash: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What may be shown: everything but the hash."""
        out = asdict(self)
        out.pop("hash")
        out["scopes"] = list(self.scopes)
        return out


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(presented: str) -> str | None:
    """``pk_<id>_<secret>`` -> ``pk_<id>``; None when it is not shaped as a key."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] not in PREFIX.values() or not parts[1] or not parts[2]:
        return None
    return f"{parts[0]}_{parts[1]}"


class KeyRing:
    def __init__(self, state_dir: Path):
        self.path = state_dir / KEYS_FILE
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    # -- reading ----------------------------------------------------------------------------
    def _load(self) -> dict[str, ApiKey]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._seen:
                raw = json.loads(self.path.read_text() or "{}")
                self._keys = {k: ApiKey(**{**v, "scopes": tuple(v["scopes"])}) for k, v in raw.get("keys", {}).items()}
                self._seen = stamp
            return self._keys

    def list(self) -> list[ApiKey]:
        return sorted(self._load().values(), key=lambda k: k.created_at)

    def get(self, key_id: str) -> ApiKey | None:
        return self._load().get(key_id)

    def verify(self, presented: str) -> ApiKey | None:
        """The active key ``presented`` is, or None."""
        key_id = key_id_of(presented)
        key = self._load().get(key_id) if key_id else None
        if key is None or not key.active or not hmac.compare_digest(key.hash, _digest(presented)):
            return None
        return key

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """The file's contents, locked against other writers, written back atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data: dict[str, Any] = json.loads(self.path.read_text() or "{}") if self.path.exists() else {}
            data.setdefault("keys", {})
            yield data
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)

    def create(self, kind: str, name: str, scopes: "builtins.list[str] | None" = None, source: str | None = None,
               rate_limit: float = 0.0) -> tuple[ApiKey, str]:
        """A new key and its one-time plain text."""
        if kind not in PREFIX:
            raise ValidationFailed(f"kind must be publishable or secret, got {kind!r}")
        if rate_limit < 0:
            raise ValidationFailed("rate_limit must be 0 (unlimited) or more requests per second")
        if kind == PUBLISHABLE:
            if scopes and set(scopes) - set(PUBLISHABLE_SCOPES):
                raise ValidationFailed("a publishable key is safe in a web page because it can only collect and "
                                       "read a visitor's own data: it takes no scopes; make a secret key")
            chosen = list(PUBLISHABLE_SCOPES)
        else:
            if not scopes:
                raise ValidationFailed("a secret key needs at least one scope (e.g. profiles:read, admin)")
            try:
                chosen = check_scopes(scopes)
            except ValueError as exc:
                raise ValidationFailed(str(exc)) from None
        key_id = f"{PREFIX[kind]}_{secrets.token_hex(6)}"
        plain = f"{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id=key_id, kind=kind, name=name, scopes=tuple(chosen),
                     source=source or ("web" if kind == PUBLISHABLE else "server"), rate_limit=float(rate_limit),
                     created_at=datetime.now(timezone.utc).isoformat(), hash=_digest(plain))
        with self._editing() as data:
            data["keys"][key_id] = {**asdict(key), "scopes": list(key.scopes)}
        return key, plain

    def revoke(self, key_id: str) -> ApiKey:
        with self._editing() as data:
            raw = data["keys"].get(key_id)
            if raw is None:
                raise NotFound(f"no key {key_id!r}; `personable keys list` shows them")
            key = ApiKey(**{**raw, "scopes": tuple(raw["scopes"])})
            if key.active:
                key = replace(key, revoked_at=datetime.now(timezone.utc).isoformat())
                data["keys"][key_id] = {**asdict(key), "scopes": list(key.scopes)}
        return key


def can_collect(key: ApiKey) -> bool:
    return COLLECT in key.scopes
