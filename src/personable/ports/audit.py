"""The audit log's storage: a chain extended in one transaction, read in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Protocol

# Given the chain's head (its last sequence number and mac; 0 and the genesis
# mac when empty), the records that follow it and the checkpoint that ends them.
Extend = Callable[[int, str], tuple[list[dict[str, Any]], dict[str, Any]]]


class AuditStore(Protocol):
    def append_audit(self, extend: Extend) -> None:
        """In one transaction, with other writers held off: read the head, call ``extend``, write what it gives."""
    def audit_records(self, after_seq: int, limit: int) -> list[dict[str, Any]]: ...
    def audit_checkpoints(self) -> list[dict[str, Any]]: ...
    def audit_query(self, actor: str | None, action: str | None, target: str | None, since: datetime | None,
                    limit: int) -> list[dict[str, Any]]: ...
