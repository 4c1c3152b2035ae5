"""The write path's port: a batch of raw records through validation, dedupe,
stitching and profile updates, in one transaction of the offline store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ContextManager, Mapping, Protocol

import pyarrow as pa

from ..events.spec import ORDER_COMPLETED
from ..identity.components import Existing, Links
from ..identity.stitcher import Node, StitchPlan

if TYPE_CHECKING:
    import ibis.expr.types as ir


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the write path needs to know from configuration."""

    junk_values: tuple[str, ...]
    identifier_traits: tuple[tuple[str, str], ...]   # (trait, kind)
    max_future_hours: float
    session_timeout_minutes: int
    trait_default_policy: str
    trait_policies: tuple[tuple[str, str], ...]
    reporting_currency: str = "USD"
    currency_rates: tuple[tuple[str, float], ...] = ()   # (ISO 4217 code, 1 unit in the reporting currency)
    order_event: str = ORDER_COMPLETED   # events.order_event: what the profile counts as an order
    consent_categories: tuple[tuple[str, tuple[str, ...]], ...] = ()   # privacy.categories
    gpc_denies: tuple[str, ...] = ()      # privacy.gpc_denies
    policy_version: str | None = None     # privacy.policy_version, recorded with each consent
    privacy_json: str = ""                # the privacy section (the consent policy), as JSON: hashable
    minimize_json: str = ""               # privacy.minimize: fields cut down at collection, as JSON


@dataclass(frozen=True)
class StagedInput:
    """Raw event records to push through the write path.

    Either ``lines`` (an Arrow table with a ``line`` column of JSON text) or
    ``file`` (a path the store reads itself, in bulk) is set. ``record_kind`` says
    what the file holds (events, crm records, orders) and ``mapping`` which file
    column holds which field.
    ``require_timestamp`` is on for files: a historical import without event times
    is almost always a column-mapping mistake.
    """

    source: str
    origin: str
    lines: pa.Table | None = None
    file: str | None = None
    file_format: str = "jsonl"
    record_kind: str = "events"
    mapping: dict[str, str] = field(default_factory=dict)
    require_timestamp: bool = False
    validated: bool = False       # lines already passed the Python validator (HTTP, Python API)
    log_positions: Mapping[int, int] | None = None  # commit these event-log positions with the batch (exactly once)
    received_at: datetime | None = None
    order_event: str = ORDER_COMPLETED   # events.order_event: the event an orders file's rows become


@dataclass
class IngestReport:
    origin: str
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    profiles_touched: int = 0
    profiles_created: int = 0
    merges: int = 0
    refused_links: int = 0
    refused_collection: int = 0   # events of profiles the consent policy refuses for collection
    problems: list[dict[str, Any]] = field(default_factory=list)  # a sample, for display

    def add(self, other: "IngestReport") -> None:
        for name in ("received", "accepted", "duplicates", "quarantined", "profiles_touched",
                     "profiles_created", "merges", "refused_links", "refused_collection"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems[: max(0, 20 - len(self.problems))])

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BatchWriter(Protocol):
    """One batch inside one transaction; committed when the context exits cleanly."""

    now: datetime  # the batch's time: received_at of its events and updated_at of its profiles

    def trait_values(self, fields: list[tuple[str, str | None]]) -> list[tuple[str, str, str | None]]: ...
    def set_standardized(self, rows: list[tuple[str, str, str | None, str | None, str | None, str, bool]]) -> None: ...
    def check_rules(self, violations: "ir.Table | None", quarantine_fields: set[str]) -> None: ...
    def screen(self) -> None: ...
    def identifier_values(self) -> list[tuple[str, str]]: ...
    def set_identifier_values(self, rows: list[tuple[str, str, str | None]]) -> None: ...
    def links(self) -> Links: ...
    def existing(self) -> Existing: ...   # for the identifiers of the last links()
    def shared_nodes(self) -> set[Node]: ...
    def apply(self, plan: StitchPlan) -> None: ...
    def commit_log_positions(self, stream: str, positions: Mapping[int, int]) -> None: ...
    def changed_profiles(self) -> tuple[list[str], list[str]]: ...
    def report(self) -> IngestReport: ...


class FileImport(Protocol):
    """A file read into staging once, then written in chunks (one transaction each)."""

    total: int                        # records read (lines the reader rejected are quarantined already)

    def chunk(self, first: int, last: int, settings: PipelineSettings) -> ContextManager[BatchWriter]: ...


class EventWrites(Protocol):
    """Where the write path stores: batches (one transaction each), file
    imports read in bulk, records refused before the write path, and the
    event-log positions committed with each batch."""

    def batch(self, staged: StagedInput, settings: PipelineSettings) -> ContextManager[BatchWriter]: ...
    def open_file(self, staged: StagedInput) -> ContextManager[FileImport]: ...
    def add_quarantine(self, rows: list[dict[str, Any]]) -> None: ...
    def quarantine(self, limit: int = 50, offset: int = 0) -> pa.Table: ...
    def committed_positions(self, stream: str) -> dict[int, int]: ...
