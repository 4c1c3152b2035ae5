"""The typed shapes of the admin and read routes: request bodies (validated by
FastAPI; a bad one is a 400 naming ``body.<field>``) and responses (validated on
the way out, and the OpenAPI description a generated client is built from).

Responses name the fields that are always there and allow more (documents
and reports grow; a client keeps what it does not know in
``additional_properties``). The collection routes (``/v1/track`` ... ``/v1/batch``)
are not here: they parse by hand for speed (see ``schemas.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ..segments.config import RULE_SCHEMA


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


Timestamp = Annotated[str, BeforeValidator(_iso), Field(description="ISO 8601 time")]
Count = Annotated[int, Field(ge=0)]
JSONObject = dict[str, Any]


class Body(BaseModel):
    """A request body: unknown fields are refused (a typo is a 400, not ignored)."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A response: the fields named are always there; others may be too."""

    model_config = ConfigDict(extra="allow")


# -- errors ---------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    path: str = Field(description="Where: a field path such as `batch[3].userId` or `query.limit`")
    problem: str


class ErrorInfo(Open):
    code: str = Field(description="Stable: not_found, validation_failed, unauthorized, path_not_allowed, ...")
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    error: ErrorInfo


ERROR_STATUSES = {400: "Invalid input (field path + problem in details)", 401: "Missing or wrong credentials",
                  403: "The credential lacks the route's scope (missing_scope names it), or a file path outside "
                       "the server's import / export folder", 404: "Not found",
                  409: "Conflicts with the project's state", 413: "Body over the limit",
                  415: "Unsupported Content-Encoding", 429: "The key is over its rate limit (see Retry-After)",
                  503: "Store or worker unavailable; retry"}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the project's error shape."""
    return {status: {"model": ErrorResponse, "description": ERROR_STATUSES[status]} for status in statuses}


class Rejected(BaseModel):
    index: int = Field(description="The event's place in the batch")
    details: list[ErrorDetail]


class Collected(BaseModel):
    """What a collection call answers (declared only: those routes answer by hand, for speed)."""

    success: bool
    accepted: Count
    rejected: list[Rejected] | None = Field(None, description="Invalid events of a batch (stored in quarantine)")


# -- profiles, quarantine, stats, ingest ------------------------------------------------------------
class ProfileDocument(Open):
    """The unified profile (see docs/architecture.md, the online store)."""

    profile_id: str
    traits: JSONObject
    computed: JSONObject
    identities: list[JSONObject]
    segments: list[JSONObject]
    consents: JSONObject
    recent_events: list[JSONObject]


class MembershipSpell(Open):
    segment_id: str
    profile_id: str
    entered_at: Timestamp
    exited_at: Timestamp | None
    entered_by: str | None
    exited_by: str | None


class Transition(Open):
    key: str
    value: Any
    since: Timestamp
    until: Timestamp | None


class ProfileHistory(BaseModel):
    profile_id: str
    segments: list[MembershipSpell]
    computed: list[Transition]


class Items(BaseModel):
    """A list in an object (room for paging fields beside it)."""

    items: list[JSONObject]


class QuarantineRecord(Open):
    id: int
    received_at: Timestamp
    source: str | None
    origin: str | None
    record_no: int | None
    message_id: str | None
    problems: list[ErrorDetail]
    raw: str | None


class QuarantinePage(BaseModel):
    items: list[QuarantineRecord]
    limit: int
    offset: int


class Stats(Open):
    events: Count
    profiles: Count
    identities: Count
    quarantined: Count


class IngestRequest(Body):
    path: str = Field(description="A file in the server's import folder (server.import_dir)")
    kind: Literal["events", "crm", "orders"] = "events"
    format: Literal["jsonl", "csv", "parquet"] | None = Field(None, description="Default: from the extension")
    mapping: dict[str, str] = Field(default_factory=dict, description="FIELD -> COLUMN; over imports.<kind>")
    source: str = "import"
    chunk_size: Annotated[int, Field(strict=True, ge=1, le=10_000_000)] | None = Field(
        None, description="Records per transaction (default 250,000)")


class IngestReportModel(Open):
    origin: str
    received: Count
    accepted: Count
    duplicates: Count
    quarantined: Count
    profiles_touched: Count
    profiles_created: Count
    merges: Count
    refused_links: Count
    refused_collection: Count = 0
    """Events of profiles the consent policy refuses for collection: minimized, dropped (privacy.collection_refused)."""
    problems: list[JSONObject]


class Job(Open):
    job: str
    interval_s: float
    runs: Count
    failures: Count


class Health(Open):
    status: str
    version: str
    project: str
    schema_version: int
    commits: Count
    worker_failures: Count
    worker_set_aside: Count = 0
    """Event-log records the store kept refusing, set aside in the quarantine with the error."""
    store_process: bool = False
    """Whether the store runs in its own process (server.store_process)."""
    store_restarts: Count = 0
    """How often the store process died and was started again."""
    store_pid: int | None = None
    """The store process's pid, when there is one."""
    jobs: list[Job]


# -- quality --------------------------------------------------------------------------------------
class FieldQuality(Open):
    field: str
    source: str
    records: Count
    observed: Count
    completeness: float | None
    validity: float | None
    uniqueness: float | None
    problems: list[str]


class QualityReport(Open):
    run_at: Timestamp
    profiles: Count
    fields: list[FieldQuality]


class QualityHistory(BaseModel):
    items: list[QualityReport]


class CleanReport(Open):
    fields: list[JSONObject]
    revenue_changed_profiles: Count


class ImputeReport(Open):
    fields: list[JSONObject]


# -- identity resolution --------------------------------------------------------------------------
class ResolutionSummary(Open):
    records: Count
    pairs_scored: Count
    merged_profiles: Count
    review: Count
    blocked: JSONObject
    seconds: float


class ScoredPair(Open):
    left_profile: str
    right_profile: str
    match_probability: float
    match_weight: float
    status: str
    explanation: list[JSONObject]


class ReviewPage(BaseModel):
    items: list[ScoredPair]
    status: str
    limit: int
    offset: int


class DecisionRequest(Body):
    left: str = Field(min_length=1, description="One profile id of the pair")
    right: str = Field(min_length=1, description="The other profile id")
    decision: Literal["accept", "reject"]
    actor: str | None = Field(None, description="Who decided (kept in the audit trail; default `api`)")


class UndoRequest(Body):
    profile: str = Field(min_length=1, description="Id of the profile that was merged away")
    actor: str | None = Field(None, description="Who undid it (default `api`)")


class Explanation(Open):
    profile_id: str
    links: list[JSONObject]
    pending_review: list[JSONObject]


# -- segments -------------------------------------------------------------------------------------
class SegmentDefinition(Body):
    name: str | None = None
    description: str | None = None
    rule: Any = Field(json_schema_extra=RULE_SCHEMA,
                      description="trait / computed / event / in_segment / all / any / not (docs/segments.md)")


class Segment(Open):
    segment_id: str
    name: str
    description: str
    rule: Any
    origin: str
    depends_on: list[str]
    time_dependent: bool
    size: Count
    refreshed_at: Timestamp | None


class SegmentSize(Open):
    at: Timestamp
    size: Count
    entered: Count
    exited: Count
    cause: str


class SegmentDetail(Segment):
    sizes: list[SegmentSize]


class SegmentList(BaseModel):
    items: list[Segment]


class Deleted(BaseModel):
    deleted: str


class Member(Open):
    profile_id: str
    entered_at: Timestamp


class MembersPage(BaseModel):
    items: list[Member]
    limit: int
    offset: int


class Memberships(BaseModel):
    items: list[MembershipSpell]


class Transitions(BaseModel):
    items: list[Transition]


class RefreshedSegment(Open):
    segment_id: str
    size: Count
    entered: Count
    exited: Count
    seconds: float


class RefreshResult(Open):
    segments: list[RefreshedSegment]


class ExportRequest(Body):
    path: str = Field(description="A file in the server's export folder (server.export_dir)")
    format: Literal["csv", "parquet"] | None = Field(None, description="Default: from the extension")


class ExportResult(Open):
    segment_id: str
    path: str
    format: str
    members: Count
    """Members written: those the consent policy allows for the export's purpose."""
    purpose: str
    refused: Count
    """Members left out: no consent for the purpose (each refusal is recorded)."""


class ComputeResult(Open):
    customers_scored: Count
    profiles_staged: Count
    changed_profiles: Count
    seconds: float
    rfm_segments: list[JSONObject]
    lifecycle_stages: list[JSONObject]


def _cluster_count(value: Any) -> Any:
    # One check, not a union: a union's errors name each member ("n_clusters.literal['auto']").
    if value == "auto" or (type(value) is int and 2 <= value <= 1000):
        return value
    raise ValueError("must be auto or a whole number from 2 to 1000")


ClusterCount = Annotated[int | str, BeforeValidator(_cluster_count), WithJsonSchema(
    {"anyOf": [{"const": "auto", "type": "string"}, {"type": "integer", "minimum": 2, "maximum": 1000}],
     "default": "auto", "description": "How many clusters, or auto (silhouette; BIC for gmm)"})]


class ClusterRequest(Body):
    method: Literal["kmeans", "gmm", "agglomerative", "dbscan", "hdbscan"] = "kmeans"
    n_clusters: ClusterCount = "auto"
    pca: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Keep this share of variance (below 1) or this many components (1 or more)")
    features: list[str] | None = None
    population: Literal["customers", "all"] = "customers"
    stability_boots: Annotated[int, Field(strict=True, ge=0, le=1000)] = 5


class ClusterResult(Open):
    method: str
    n_clusters: int
    scores: JSONObject
    clusters: list[JSONObject]


# -- models ---------------------------------------------------------------------------------------
class TrainRequest(Body):
    horizon_days: Annotated[int, Field(strict=True, ge=1, le=36_500)] | None = Field(
        None, description="Days ahead the model looks (default: models.horizon_days)")
    model: str | None = Field(None, description="lightgbm or logistic (churn); lightgbm or ridge (next_purchase)")
    reason: str = Field("manual", description="Why this version was trained (kept in the registry)")


class ModelVersion(Open):
    name: str
    version: int
    kind: str
    trained_at: Timestamp
    train_cutoff: Timestamp | None
    metrics: JSONObject


class ModelList(BaseModel):
    items: list[ModelVersion]


class ModelDetail(ModelVersion):
    versions: int
    monitoring: list[JSONObject]


class ScoreResult(Open):
    model: str
    version: int
    scored: Count
    traits: list[str]
    changed_profiles: Count


class EvaluationReport(Open):
    version: int
    metrics: JSONObject


class DriftReport(Open):
    columns: list[JSONObject]


class Maintained(BaseModel):
    items: list[JSONObject]


# -- recommendations ------------------------------------------------------------------------------
class RecommendedItem(Open):
    item_id: str
    name: str | None
    category: str | None
    score: float
    reason: str


class ConsentVerdict(Open):
    """The consent policy's answer for one purpose (docs/privacy.md)."""

    purpose: str
    allowed: bool
    reason: Literal["granted", "denied", "default_allow", "default_deny"]
    region: str


class Recommendations(Open):
    profile_id: str | None
    placement: str
    source: str
    consent: ConsentVerdict
    """personalization refused: the popular list, shaped only by the request's own context."""
    items: list[RecommendedItem]


class TrainedRecommender(Open):
    version: int
    profiles: Count
    items: Count
    seconds: float


class RecommendEvaluateRequest(Body):
    split: Literal["temporal", "random"] = "temporal"
    k: Annotated[int, Field(strict=True, ge=1, le=100)] = 10
    ratio: Annotated[float, Field(gt=0, lt=1)] = 0.8


class Leaderboard(Open):
    split: str
    leaderboard: list[JSONObject]
    skipped: JSONObject


class ItemsImport(Body):
    path: str = Field(description="A catalog file (CSV, JSON lines, Parquet) in the server's import folder")


class CatalogImport(Open):
    items: Count
