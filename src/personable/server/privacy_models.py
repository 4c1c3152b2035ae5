"""Request and response models of the access and privacy routes (access_routes.py,
privacy_routes.py): tokens, consent, personal data export, retention, anonymized
releases and the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool

from .models import Body, ConsentVerdict, Count, JSONObject, Open, Timestamp


# -- access ------------------------------------------------------------------------------------------
class AccessTokenAnswer(BaseModel):
    """RFC 6749, section 5.1."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


class UserTokenRequest(Body):
    user_id: Annotated[str, Field(min_length=1, max_length=512)]


class UserTokenAnswer(Open):
    user_id: str
    header: str
    token: str


# -- privacy -----------------------------------------------------------------------------------------
class ConsentUpdate(Body):
    purposes: Annotated[dict[Annotated[str, Field(min_length=1, max_length=64)], StrictBool], Field(min_length=1)]
    """Purpose -> granted (true) or withdrawn (false); nothing else is a yes or a no."""
    source: Annotated[str, Field(min_length=1, max_length=100)] = "api"
    """Who recorded it (e.g. preference-center)."""
    policy_version: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """The policy the person saw (default: privacy.policy_version)."""


class ConsentChange(Open):
    profile_id: str
    purpose: str
    granted: bool
    observed_at: Timestamp
    source: str | None
    via: str | None
    policy_version: str | None


class ProfileConsent(Open):
    profile_id: str
    policy_version: str
    consents: JSONObject
    verdicts: dict[str, ConsentVerdict]
    history: list[ConsentChange]


class RefusalCount(Open):
    use: str
    purpose: str
    reason: str
    count: Count


class RefusalCounts(Open):
    items: list[RefusalCount]


class PersonalData(Open):
    """A person's data bundle (docs/privacy.md, "Access and portability")."""

    exported_at: Timestamp
    profile_id: str
    policy_version: str
    traits: list[JSONObject]
    identities: list[JSONObject]
    consents: JSONObject
    consent_history: list[JSONObject]
    segments: list[JSONObject]
    segment_history: list[JSONObject]
    computed_traits: list[JSONObject]
    computed_history: list[JSONObject]
    processing: list[JSONObject]
    refused_uses: list[JSONObject]
    merged_from: list[str]
    events: Count
    """How many events; GET .../export/events.csv has them."""


class RetentionReport(Open):
    ran_at: Timestamp
    dry_run: bool
    mode: Literal["anonymize", "delete"]
    events: dict[str, Count]
    """Per rule of privacy.retention.events: how many events expired."""
    tables: dict[str, Count]
    """Per table (quarantine, consent_refusals, events_minimized): how many rows expired."""
    removed: Count
    profiles_touched: Count


class ReleaseRequest(Body):
    report: Literal["segment_sizes", "event_counts"]
    epsilon: Annotated[float, Field(gt=0, le=100)]
    """The privacy loss this release may spend (split over its cells)."""
    k: Annotated[int, Field(ge=0)] | None = None
    """Suppress cells whose released count is below this (default privacy.dp.k)."""


class BudgetState(Open):
    total: float
    spent: float
    left: float


class PrivateRelease(Open):
    report: str
    released_at: Timestamp
    epsilon: float
    k: Count
    mechanism: str
    cells: dict[str, Count | None]
    """Noisy counts; null: suppressed (below k)."""
    suppressed: list[str]
    budget: BudgetState


class PrivacyBudgetState(BudgetState):
    ledger: list[JSONObject]


class AuditRecord(Open):
    seq: int
    at: Timestamp
    actor: str
    action: str
    target: str | None
    outcome: str
    details: JSONObject | None
    redacted: bool = False
    """An erasure took the person's target and details out of this record (its digests keep the chain whole)."""


class AuditPage(Open):
    items: list[AuditRecord]


class AuditVerification(Open):
    ok: bool
    records: Count
    checkpoints: Count
    checkpoints_in_file: Count
    last_seq: Count
    problems: list[str]
    public_key: str
    """The Ed25519 key that signs the checkpoints (base64), for checking them elsewhere."""


# -- erasure -----------------------------------------------------------------------------------------
class ErasureRemoved(Open):
    tables: dict[str, int]
    """Rows per table (audit_log: records redacted, not deleted)."""
    online_documents: int
    exports: list[JSONObject]
    """Export files rewritten without the person, with the rows each lost."""
    model_artifacts: list[str]
    """Model files that held the person's rows, deleted (retrain the models in ``retrain``)."""
    event_log: Literal["released", "pending"]
    store_compacted: bool


class ErasureCertificate(Open):
    """What an erasure removed, where; keyed digests of every id and value erased; its own hash. The
    same certificate is an audit record (action privacy.erase)."""

    erasure_id: str
    requested_at: str
    requested_by: str
    erased_at: str
    people: int
    removed: ErasureRemoved
    retrain: list[str]
    digests: list[str]
    hash: str | None = None
    state: Literal["done", "pending", "compacting"]
    """pending or compacting: a step waits (the event log, an import); the next erasure or
    POST /v1/admin/privacy/erasures/resume finishes it."""
    already_erased: list[str] = []
    """Identifiers given that an earlier erasure took (this certificate is that erasure's)."""
    resumed: list[str] = []


class ErasureList(Open):
    items: list[ErasureCertificate]


class RekeyReport(Open):
    """A rotation of the identity key: every stored digest of an email or phone wrapped under the new key."""

    key_id: str
    previous_key_id: str | None
    rekeyed: dict[str, int]
    """Digests rewrapped per table."""
    online_documents: int
    """Profiles written to the online store again, with their lookup keys under the new key."""
    online_keys_dropped: int
    """Lookup keys under the old key, dropped from the online store."""


class EraseRequest(Body):
    identifiers: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]],
                           Field(min_length=1, max_length=10_000)]
    """Who to erase: ids, or email:, phone:, user_id:, anonymous_id:, profile: identifiers."""


class VerifyRequest(Body):
    values: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(min_length=1, max_length=10_000)]
    """Ids, emails, phones, names: each is sought as typed and standardized (emails, phones: hashed too)."""


class VerifyFinding(Open):
    where: str
    column: str | None = None
    rows: int | None = None
    values: list[str]


class VerifyReport(Open):
    values: list[str]
    sought: int
    findings: list[VerifyFinding]
    clean: bool
    """No finding anywhere: the offline store's every text column, the online store, every file."""
    erasures: list[JSONObject]
    unregistered_tables: list[str]
