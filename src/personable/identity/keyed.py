"""Keyed digests of identifiers: what the identity graph stores of an email or
a phone number (any identifier configured ``hash: true``).

An unkeyed SHA-256 of a phone number is no secret: there are few enough
numbers to hash them all. So the stored form is an HMAC-SHA-256 under the
project's identity key, written with the key's id: ``k2:<hex>``. Keys rotate:
a new key wraps what the older ones made, ``HMAC(k2, HMAC(k1, SHA-256(x)))``,
so a store is re-keyed from its own digests, without the raw values it never
kept; an old key alone (a leaked backup of ``keys.json``) no longer reaches
the stored digests. Lookups and writes use the current key only: a store is
re-keyed whole, in one transaction (``personable privacy rekey``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Sequence

from ..errors import ConfigError
from .identifiers import sha256_hex


class IdentityHasher:
    def __init__(self, keys: Sequence[tuple[str, bytes]]):
        """``keys``: (key id, secret), oldest first; the last one is current."""
        self.use(keys)

    def use(self, keys: Sequence[tuple[str, bytes]]) -> None:
        """Take these keys from now on (a rotation: the store is re-keyed in the same transaction)."""
        if not keys:
            raise ConfigError("no identity key: the project's keys.json (or PERSONABLE_IDENTITY_KEYS) must hold one")
        # One object, swapped whole: a thread reading it mid-rotation sees the old keys or the new.
        self._keys = _Keys(tuple(keys), {kid: n for n, (kid, _) in enumerate(keys)})

    @property
    def key_id(self) -> str:
        return self._keys.keys[-1][0]

    def known(self, key_id: str) -> bool:
        return key_id in self._keys.index

    def digest(self, normalized: str) -> str:
        """The stored form of a normalized identifier value."""
        return self.rewrap(sha256_hex(normalized))

    def forms(self, normalized: str) -> list[str]:
        """Every form the value may be stored in (for a scan): unkeyed, and under each key."""
        value = sha256_hex(normalized)
        out = [value]
        for kid, secret in self._keys.keys:
            value = _mac(secret, value)
            out.append(f"{kid}:{value}")
        return out

    def rewrap(self, stored: str) -> str:
        """A stored digest -- unkeyed SHA-256 (a store from before keys), or under an older key -- as the
        current key makes it."""
        keys = self._keys
        kid, sep, value = stored.partition(":")
        if not sep:
            start, value = 0, stored
        elif kid in keys.index:
            start = keys.index[kid] + 1
        else:
            raise ConfigError(f"an identity is keyed with {kid!r}, a key this project does not have")
        for _, secret in keys.keys[start:]:
            value = _mac(secret, value)
        return f"{keys.keys[-1][0]}:{value}"


@dataclass(frozen=True)
class _Keys:
    keys: tuple[tuple[str, bytes], ...]
    index: dict[str, int]


def _mac(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()
