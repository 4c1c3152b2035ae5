"""Which key the identity graph's digests are under, and re-keying it."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Protocol


class IdentityKeyStore(Protocol):
    def identity_key(self) -> tuple[str, bool] | None:
        """The id of the key the store's digests were last re-keyed to, and whether the online store's
        lookup keys were rewritten under it too (None: never re-keyed)."""
    def online_rekeyed(self, key_id: str) -> None:
        """The online store's lookup keys are under ``key_id`` now."""
    def rekey_identities(self, kinds: list[str], key_id: str, rewrap: Callable[[str], str], at: datetime,
                         then: Callable[[], None] | None = None) -> dict[str, int]:
        """Every stored digest of these identifier kinds not yet under ``key_id`` replaced by ``rewrap(it)``,
        and ``key_id`` recorded as the store's, in one transaction serialized with the write path (``then``
        runs inside it, before the commit); digests rewrapped per table."""
