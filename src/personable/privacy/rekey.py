"""Re-keying the identity graph (``personable privacy rekey``).

A rotation adds a key to the project's keys and wraps every stored digest
under it (``identity/keyed.py``), in one store transaction that every writer
waits for; this process takes the new key inside that transaction, so no
batch is written under the old key after the store moved on. The online
store's lookup keys are then written again from the offline store and the
old ones dropped.

The same step runs when a project opens (``converge``): a store from before
keys (unkeyed SHA-256 digests), or one whose rotation a crash cut short, is
brought under the current key. A store keyed with a key this process does
not have is refused: its keys.json (or ``PERSONABLE_IDENTITY_KEYS``) is stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ConfigError
from .identity_keys import add_identity_key, identity_keys

if TYPE_CHECKING:
    from ..clock import Clock
    from ..identity.keyed import IdentityHasher
    from ..ports import OnlineStore
    from ..ports.identity_keys import IdentityKeyStore


class IdentityRekey:
    def __init__(self, clock: "Clock", store: "IdentityKeyStore", hasher: "IdentityHasher", kinds: list[str],
                 state_dir: Path, online: "OnlineStore | None", reproject: Callable[[], int]):
        """``kinds``: the identifier kinds stored as digests; ``reproject``: write every profile's document
        and lookup keys to the online store again (how many)."""
        self.clock, self.store, self.hasher, self.kinds = clock, store, hasher, kinds
        self.state_dir, self.online, self.reproject = state_dir, online, reproject

    def converge(self) -> dict[str, Any] | None:
        """Bring the store under the current key if it is not (None: it was)."""
        state = self.store.identity_key()
        have = state[0] if state else None
        if have == self.hasher.key_id:
            if state and not state[1]:       # a crash between the store's re-keying and the online store's
                return {"key_id": have, "previous_key_id": have, "rekeyed": {}, **self._online(have, True)}
            return None
        if have is not None and not self.hasher.known(have):
            raise ConfigError(f"the store's identities are keyed with {have!r}, which this process's identity "
                              "keys do not hold: give it the project's current .personable/keys.json (or "
                              "PERSONABLE_IDENTITY_KEYS)")
        return self._rekey(None)

    def rotate(self) -> dict[str, Any]:
        """A new key, and the store re-keyed to it."""
        new_id = add_identity_key(self.state_dir)
        return self._rekey(lambda: self.hasher.use(identity_keys(self.state_dir)), new_id)

    def _rekey(self, take: Callable[[], None] | None, key_id: str | None = None) -> dict[str, Any]:
        from ..identity.keyed import IdentityHasher

        target = IdentityHasher(identity_keys(self.state_dir)) if take is not None else self.hasher
        if key_id is not None and target.key_id != key_id:
            raise ConfigError(f"the identity keys changed meanwhile: expected {key_id!r}, found {target.key_id!r}")
        state = self.store.identity_key()
        counts = self.store.rekey_identities(self.kinds, target.key_id, target.rewrap, self.clock.now(), take)
        return {"key_id": target.key_id, "previous_key_id": state[0] if state else None, "rekeyed": counts,
                **self._online(target.key_id, any(counts.values()))}

    def _online(self, key_id: str, rewrite: bool) -> dict[str, int]:
        """The online store's documents and lookup keys written again under ``key_id``, the old keys
        dropped, and that recorded (until then, a reopen finishes it). Meanwhile an email or phone looked
        up online misses."""
        online = pruned = 0
        if self.online is not None and rewrite:
            online = self.reproject()
            pruned = self.online.prune_keys(self.kinds, key_id)
        self.store.online_rekeyed(key_id)
        return {"online_documents": online, "online_keys_dropped": pruned}
