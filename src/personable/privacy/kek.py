"""The key-encryption key: what wraps the data keys that encrypt personal data
at rest, shaped like a KMS (``generate_data_key``, ``decrypt_data_key``) so
that a cloud KMS can take its place without the callers changing.

The local one keeps its keys in ``.personable/keys.json`` (``kek``, made on
first use) or takes them from ``PERSONABLE_KEK`` (a JSON list of ``{"id",
"secret"}``, base64 of 32 bytes, the last one current): a process that gets
its secrets from the environment then keeps none on disk beside the data. A
wrapped data key names the key that wrapped it, so older keys keep opening
what they wrapped after a new one is added.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Protocol

from ..access.tokens import read_keys, update_keys
from ..errors import ConfigError

ENV = "PERSONABLE_KEK"
FIELD = "kek"
NONCE = 12


class KeyEncryptionKey(Protocol):
    def generate_data_key(self) -> tuple[bytes, bytes]:
        """A fresh 256-bit data key: (the key, the key wrapped). Keep only the wrapped one."""
    def decrypt_data_key(self, wrapped: bytes) -> bytes:
        """The data key ``wrapped`` holds; a StoreError-worthy ValueError when no key here wrapped it."""


class LocalKek:
    def __init__(self, keys: list[tuple[str, bytes]]):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not keys:
            raise ConfigError("no key-encryption key: keys.json (kek) or PERSONABLE_KEK must hold one")
        self._keys = {kid: AESGCM(secret) for kid, secret in keys}
        self._current = keys[-1][0]

    def generate_data_key(self) -> tuple[bytes, bytes]:
        key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(NONCE)
        kid = self._current.encode()
        return key, bytes([len(kid)]) + kid + nonce + self._keys[self._current].encrypt(nonce, key, kid)

    def decrypt_data_key(self, wrapped: bytes) -> bytes:
        if len(wrapped) < 2 + NONCE or len(wrapped) < 1 + wrapped[0] + NONCE + 16:
            raise ValueError("a wrapped data key is cut short")
        n = wrapped[0]
        kid = wrapped[1:1 + n]
        nonce, sealed = wrapped[1 + n:1 + n + NONCE], wrapped[1 + n + NONCE:]
        aes = self._keys.get(kid.decode(errors="replace"))
        if aes is None:
            raise ValueError(f"a data key is wrapped by key {kid.decode(errors='replace')!r}, which is not here")
        from cryptography.exceptions import InvalidTag

        try:
            return bytes(aes.decrypt(nonce, sealed, kid))
        except InvalidTag:
            raise ValueError(f"a data key does not open with key {kid.decode(errors='replace')!r} here (another "
                             "project's key of the same id, or a changed key)") from None


def project_kek(state_dir: Path) -> LocalKek:
    """The project's key-encryption key (made on first use)."""
    if os.environ.get(ENV):
        return LocalKek(key_list(os.environ[ENV], ENV))
    stored = read_keys(state_dir).get(FIELD) or update_keys(state_dir, _with_first_key)[FIELD]
    return LocalKek(key_list(stored, f"keys.json {FIELD}"))


KEY_ID = re.compile(r"^[A-Za-z0-9]{1,16}$")


def key_list(listed: Any, where: str) -> list[tuple[str, bytes]]:
    """(id, secret) of a list of ``{"id", "secret"}`` (JSON text or parsed), oldest first: each id
    letters and digits, each secret base64 of 32 bytes, the ids distinct."""
    try:
        items = json.loads(listed) if isinstance(listed, str) else listed
        keys = [(str(k["id"]), base64.b64decode(k["secret"], validate=True)) for k in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{where} must be a JSON list of {{\"id\": ..., \"secret\": <base64 of 32 bytes>}}: "
                          f"{exc}") from exc
    for kid, secret in keys:
        if not KEY_ID.match(kid) or len(secret) != 32:
            raise ConfigError(f"{where}: key {kid!r} must have an id of letters and digits and a secret of 32 bytes")
    if len({kid for kid, _ in keys}) != len(keys):
        raise ConfigError(f"{where}: two keys share an id")
    return keys


def _with_first_key(data: dict[str, Any]) -> dict[str, Any]:
    if data.get(FIELD):
        return data
    return {**data, FIELD: [{"id": "kek1", "secret": base64.b64encode(secrets.token_bytes(32)).decode()}]}
