"""The online store: what the request path reads in well under a millisecond."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Protocol

if TYPE_CHECKING:
    from ..identity.keyed import IdentityHasher


class ProfileReads(Protocol):
    """Resolve any identifier to a profile, read its document and its recommendations."""

    capabilities: frozenset[str]

    def resolve(self, identifier: str, region: str = "US", hasher: "IdentityHasher | None" = None) -> str | None: ...
    def profile(self, profile_id: str, recent_events: int = 20) -> dict[str, Any] | None: ...
    def put_recommendations(self, rows: Iterable[tuple[str, bytes]], replace_all: bool = False) -> None:
        """``replace_all``: ``rows`` (maybe a generator) become the whole set,
        swapped in at once: until the swap readers see the old lists, never none."""
        ...
    def recommendations(self, profile_id: str) -> bytes | None: ...


class OnlineStore(ProfileReads, Protocol):
    """A materialized online store (SQLite, Redis): documents projected into it."""

    def watermark(self) -> str | None: ...
    def apply(self, docs: Iterable[tuple[str, str]], keys: Iterable[tuple[str, str]],
              removed: Iterable[str], watermark: str | None) -> None:
        """``keys``: ``kind:value`` -> profile id. A profile id resolves through
        a ``profile:<id>`` key (a merged-away id) or else its own document, so
        a profile's own id needs no key."""
        ...
    def forget(self, profile_ids: list[str]) -> int:
        """Erase these profiles: documents, lookup keys and recommendations, and what the backend keeps of
        them once deleted where it can (SQLite: zeroed pages, an emptied WAL); how many documents went."""
        ...
    def prune_keys(self, kinds: list[str], key_id: str) -> int:
        """Drop the lookup keys of these kinds whose digest is not under ``key_id`` (what a re-keying leaves
        once every profile's keys are written again); how many went."""
        ...
    def scan(self, needles: list[str]) -> list[dict[str, Any]]:
        """Where any of ``needles`` is still held: each place, with the values found there."""
        ...
    def close(self) -> None: ...
