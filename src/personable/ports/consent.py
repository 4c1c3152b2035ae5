"""Consent records and refusals: what the privacy domain keeps in the offline store."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Protocol

import pyarrow as pa

# Columns of a consent record (``record_consents``) and of a refusal (``append_refusals``).
CONSENT_RECORD = ("profile_id", "purpose", "granted", "observed_at", "source", "message_id", "via", "policy_version")
REFUSAL = ("refused_at", "profile_id", "use", "purpose", "reason")


class ConsentStore(Protocol):
    def record_consents(self, rows: pa.Table) -> None:
        """Log each consent change and make it the profile's consent unless a newer one is recorded."""
    def consent_history(self, profile_id: str, limit: int = 200) -> list[dict[str, Any]]: ...
    def append_refusals(self, rows: pa.Table) -> None: ...
    def refusals_of(self, profile_ids: list[str]) -> list[dict[str, Any]]:
        """Each refused use of these profiles: when, which use, purpose and reason."""
    def spend_budget(self, at: datetime, release: str, epsilon: float, detail: str,
                     affordable: Callable[[float], None]) -> None:
        """In one transaction, other spenders held off: ``affordable(spent so far)`` (it raises when the
        budget cannot pay), then the ledger row."""
    def budget_ledger(self) -> list[dict[str, Any]]: ...
    def refusal_counts(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """(use, purpose, reason, count) over the refusals recorded since ``since``."""
