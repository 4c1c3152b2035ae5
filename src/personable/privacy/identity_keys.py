"""Where the identity keys live: ``.personable/keys.json`` (owner-only; back
it up with the store: without it no email or phone can be looked up again),
or ``PERSONABLE_IDENTITY_KEYS`` (a JSON list of ``{"id", "secret"}``, oldest
first) for processes that get their secrets from the environment."""

from __future__ import annotations

import base64
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..access.tokens import read_keys, update_keys
from ..errors import ConfigError
from .kek import key_list

ENV = "PERSONABLE_IDENTITY_KEYS"
FIELD = "identity_keys"


def identity_keys(state_dir: Path) -> list[tuple[str, bytes]]:
    """(key id, secret), oldest first; the first key is made on first use."""
    if os.environ.get(ENV):
        return key_list(os.environ[ENV], ENV)
    stored = read_keys(state_dir).get(FIELD) or update_keys(state_dir, lambda d: d if d.get(FIELD) else {
        **d, FIELD: [_new_key(1)]})[FIELD]
    return key_list(stored, f"keys.json {FIELD}")


def add_identity_key(state_dir: Path) -> str:
    """A new current key (the older ones stay: the store's digests are wrapped, not remade); its id."""
    if os.environ.get(ENV):
        raise ConfigError(f"the identity keys come from {ENV}: add the new key there (and restart every process)")
    identity_keys(state_dir)

    def add(data: dict[str, Any]) -> dict[str, Any]:
        keys = list(data.get(FIELD) or [])
        return {**data, FIELD: [*keys, _new_key(len(keys) + 1)]}

    return str(update_keys(state_dir, add)[FIELD][-1]["id"])


def _new_key(n: int) -> dict[str, str]:
    return {"id": f"k{n}", "secret": base64.b64encode(secrets.token_bytes(32)).decode(),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
