"""Profile projection: what the offline store hands the online store, and the
message that says which profiles changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

PROFILES_CHANGED = "profiles.changed"


@dataclass(frozen=True)
class ProfilesChanged:
    """Published on the bus after a commit that changed profiles.

    ``touched`` None means "too many to list": every profile changed since the
    online store's watermark (batch jobs over the whole store). ``removed`` were
    merged away; ``watermark`` is the commit's time, recorded by the online
    store so that after a crash everything newer is projected again; ``origin``
    says who changed them (``write`` for the write path)."""

    touched: tuple[str, ...] | None
    removed: tuple[str, ...] = ()
    watermark: datetime | None = None
    origin: str = "write"


class ProfileProjection(Protocol):
    def profile_docs(self, profile_ids: list[str]) -> list[tuple[str, str]]: ...
    def lookup_keys(self, profile_ids: list[str]) -> list[tuple[str, str]]: ...
    def changed_since(self, watermark: str | None) -> tuple[list[str], datetime | None]: ...
