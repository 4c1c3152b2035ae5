"""How an identifier a user types is looked up, shared by every OnlineStore.

``u1`` is tried as a userId, then an anonymousId, then a profile id;
``email:Ann@X.com`` and ``phone:(415) 555-0101`` are normalized and keyed the
way the write path stores them (``identity/keyed.py``); ``user_id:``, ``anonymous_id:`` and ``profile:``
prefixes pick one kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .identifiers import normalize_identifier
from .stitcher import ANON, USER

if TYPE_CHECKING:
    from .keyed import IdentityHasher

PROFILE = "profile"
PREFIXES = ("email", "phone", USER, ANON, PROFILE)


def candidate_keys(identifier: str, region: str = "US",
                   hasher: "IdentityHasher | None" = None) -> list[tuple[str, str]]:
    """(kind, value) pairs to try in order; kind ``profile`` is a profile id. An email or phone is found
    by its keyed digest: without the project's ``hasher`` it cannot be looked up (a ValueError, not a
    silent miss)."""
    kind = None
    if ":" in identifier:
        prefix, rest = identifier.split(":", 1)
        if prefix in PREFIXES:
            kind, identifier = prefix, rest
    if kind in ("email", "phone"):
        norm = normalize_identifier(kind, identifier, region, frozenset())
        if norm is None:
            return []
        if hasher is None:
            raise ValueError(f"a {kind} is looked up by its keyed digest: give the project's IdentityHasher")
        return [(kind, hasher.digest(norm))]
    if kind is not None:
        return [(kind, identifier)]
    return [(USER, identifier), (ANON, identifier), (PROFILE, identifier)]
