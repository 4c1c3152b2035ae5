"""Project configuration: ``personable.yaml`` plus ``PERSONABLE_*`` overrides.

A project is a folder holding ``personable.yaml`` and a state folder
``.personable/``. Secrets (write keys, the admin token) never live in the YAML
file: they come from the environment or from ``.personable/keys.json``, which
``personable init`` creates with owner-only permissions.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Field, ValidationError, model_validator

from .starter import STARTER
from .errors import ConfigError, Problem, ProjectNotFound
from .events.spec import ORDER_COMPLETED
from .identity.resolution.config import ResolutionConfig, ResolutionSection
from .predict.config import ModelsConfig, ModelsSection
from .privacy.config import PrivacySection
from .quality.config import QualityConfig, QualitySection
from .recommend.config import RecommendConfig
from .segments.config import LifecycleConfig, LifecycleSection, RfmConfig, RfmSection, SegmentDef, Segments
from .settings import Section, Text, fail, json_schema_of, problems_from

CONFIG_FILE = "personable.yaml"
STATE_DIR = ".personable"
KEYS_FILE = "keys.json"

TRAIT_POLICIES = ("last_write_wins", "first_write_wins")
DEFAULT_JUNK_VALUES = (
    "", "null", "nil", "none", "undefined", "anonymous", "unknown", "0", "-1",
    "nan", "n/a", "na", "guest", "test", "[object object]", "true", "false",
    "00000000-0000-0000-0000-000000000000",
)
DEFAULT_IDENTIFIERS = (
    {"trait": "email", "kind": "email"},
    {"trait": "phone", "kind": "phone"},
)
IDENTIFIER_KINDS = ("email", "phone", "external")


class IdentifierRule(Section):
    """A trait that links profiles, normalized and SHA-256 hashed before it is stored."""

    trait: str
    """The trait's name."""
    kind: Literal[IDENTIFIER_KINDS] = "external"  # type: ignore[valid-type]
    """email and phone are normalized first (lower-case / E.164); external is kept as given."""
    hash: bool = True
    """Store the SHA-256 of the value, not the value."""


@dataclass
class IdentityConfig:
    identifiers: list[IdentifierRule]
    junk_values: frozenset[str]
    max_user_ids_per_profile: int = 1
    default_region: str = "US"
    max_ids_per_identifier: int = 20
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)


class ServerConfig(Section):
    """The HTTP API (`personable serve`)."""

    host: str = "127.0.0.1"
    """Bind address."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8787
    max_body_bytes: Annotated[int, Field(ge=1024)] = 5_000_000
    """Larger request bodies get a 413 (RudderStack's SDKs send batches of up to 4 MB)."""
    header_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """A request's line and headers must arrive within this many seconds, else 408 and the connection closes."""
    body_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    """A request's whole body must arrive within this many seconds of its headers, else 408."""
    commit_interval_ms: Annotated[float, Field(ge=0)] = 2.0
    """Group-commit window: an event is acknowledged once durable."""
    max_batch_events: Annotated[int, Field(ge=1)] = 5_000
    """At most this many events in one /v1/batch request."""
    store_interval_ms: Annotated[float, Field(ge=0)] = 1000.0
    """Once the log worker has caught up, it lets the next batch gather this long before storing it (a read with
    fresh=true ends the wait). Each store batch has a fixed cost of about a quarter second of CPU: storing whatever
    arrived, as soon as it did, kept a core busy at any load. 0: store at once."""
    store_threads: Annotated[int, Field(ge=0)] = 1
    """DuckDB threads while serving (0: all cores); leaves cores for requests."""
    store_process: bool = True
    """With the file event log: the store (and the log worker, the scheduler) in a process of its own, so the
    store's work never holds the request path's interpreter lock (docs/benchmarks.md: /v1/track's p99 fell to a
    half or less on 2 cores). false: one process."""
    store_nice: Annotated[int, Field(ge=0, le=19)] = 0
    """The store process's niceness: higher leaves more CPU to requests under load."""
    import_dir: Annotated[str, Field(min_length=1)] = "imports"
    """The only folder server routes read imported files from (relative: to the project); the local CLI is not confined."""
    export_dir: Annotated[str, Field(min_length=1)] = "exports"
    """The only folder server routes write segment exports to (relative: to the project)."""


@dataclass
class Config:
    project_dir: Path
    name: str
    offline_url: str
    online_url: str
    bus_url: str
    sources: list[str]
    server: ServerConfig
    identity: IdentityConfig
    trait_default_policy: str
    trait_policies: dict[str, str]
    session_timeout_minutes: int
    max_future_skew_hours: float
    order_event: str = ORDER_COMPLETED   # what counts as an order (events.order_event), read by everything that counts orders
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)
    quality: QualityConfig = field(default_factory=QualityConfig)
    segments: tuple[SegmentDef, ...] = ()
    segments_refresh_minutes: float = 15.0
    realtime_segments_interval_ms: float = 1000.0
    rfm: RfmConfig = field(default_factory=RfmConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    models_maintain_hours: float = 24.0
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    privacy: PrivacySection = field(default_factory=PrivacySection)

    @property
    def state_dir(self) -> Path:
        return self.project_dir / STATE_DIR

    # -- secrets -------------------------------------------------------------
    def _keys_file(self) -> dict[str, Any]:
        path = self.state_dir / KEYS_FILE
        if not path.exists():
            return {}
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc

    def write_keys(self) -> dict[str, str]:
        """Map write key -> source name (env vars win over the keys file)."""
        stored = self._keys_file().get("write_keys", {})
        out: dict[str, str] = {}
        for source in self.sources:
            key = os.environ.get(f"PERSONABLE_WRITE_KEY_{source.upper()}") or stored.get(source)
            if key:
                out[key] = source
        return out

    def admin_token(self) -> str | None:
        return os.environ.get("PERSONABLE_ADMIN_TOKEN") or self._keys_file().get("admin_token")


SCHEMA_FILE = "personable.schema.json"  # in the state folder, written by `personable init`



def write_starter(project_dir: Path, name: str | None = None, force: bool = False) -> Path:
    project_dir.mkdir(parents=True, exist_ok=True)
    path = project_dir / CONFIG_FILE
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    path.write_text(STARTER.format(name=name or project_dir.resolve().name))
    state = ensure_state(project_dir)
    (state / SCHEMA_FILE).write_text(json.dumps(json_schema(), indent=2) + "\n")
    return path


def ensure_state(project_dir: Path) -> Path:
    """Create ``.personable/`` with a keys file holding fresh secrets if missing."""
    state = project_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state, 0o700)
    (state / ".gitignore").write_text("*\n")
    keys = state / KEYS_FILE
    if not keys.exists():
        data = {
            "admin_token": "adm_" + secrets.token_urlsafe(24),
            "write_keys": {s: "wk_" + secrets.token_urlsafe(18) for s in ("web", "server")},
        }
        fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
    return state


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """Apply ``PERSONABLE_<SECTION>__<KEY>=value`` (YAML-parsed); returns which
    path each variable set, so that a problem with it names the variable."""
    origins: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith("PERSONABLE_") or "__" not in name:
            continue
        parts = [p.lower() for p in name[len("PERSONABLE_"):].split("__")]
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = yaml.safe_load(value) if value else value
            origins[".".join(parts)] = name
    return origins


# -- the schema: one model for the whole file ---------------------------------------------
class StoreSection(Section):
    """Where data lives. Adapters are chosen by URL scheme; relative paths are relative to the project."""

    offline: str = "duckdb:///.personable/store.duckdb"
    """Event log and analytical tables."""
    online: str = "sqlite:///.personable/online.sqlite"
    """Profile documents for fast lookups; duckdb:// reads the offline file instead."""
    bus: str = "file:///.personable/bus"
    """Durable event log the HTTP path acknowledges from; memory:// stores on the request path instead."""


def _source_name(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"must be a simple name (letters, digits, _), got {name!r}")
    return name


class EventsSection(Section):
    max_future_skew_hours: float = 24.0
    """Timestamps further ahead than this are rejected."""
    order_event: Annotated[str, Field(min_length=1)] | None = None
    """The event that counts as an order (default Order Completed), for everything that counts orders:
    profile order counts and revenue, RFM, lifecycle, clusters, models and recommendations."""


class IdentitySection(Section):
    """Identity stitching: userId, anonymousId and alias always link; the identifier traits link too."""

    identifiers: list[IdentifierRule] = [IdentifierRule(trait=d["trait"], kind=d["kind"]) for d in DEFAULT_IDENTIFIERS]
    """Traits that link profiles."""
    junk_values: list[Text] = []
    """Values never used as identifiers, in addition to the built-in list (null, undefined, 0, ...)."""
    max_user_ids_per_profile: Annotated[int, Field(ge=1)] = 1
    """An identify never merges profiles beyond this many known users (alias can)."""
    default_region: Annotated[str, AfterValidator(str.upper)] = "US"
    """For phone numbers written without a country code."""
    max_ids_per_identifier: Annotated[int, Field(ge=1)] = 20
    """An email / phone carried by more user + anonymous ids is shared: it links nothing, and is reported."""
    resolution: ResolutionSection = ResolutionSection()

    def to_config(self) -> IdentityConfig:
        return IdentityConfig(
            identifiers=list(self.identifiers),
            junk_values=frozenset(list(DEFAULT_JUNK_VALUES) + [v.strip().lower() for v in self.junk_values]),
            max_user_ids_per_profile=self.max_user_ids_per_profile, default_region=self.default_region,
            max_ids_per_identifier=self.max_ids_per_identifier, resolution=self.resolution.to_config())


Policy = Literal[TRAIT_POLICIES]  # type: ignore[valid-type]


class TraitsSection(Section):
    """How traits merge when several sources disagree (by event time)."""

    default_policy: Policy = "last_write_wins"
    policies: dict[str, Policy] = {}
    """Per trait."""


class SessionsSection(Section):
    timeout_minutes: Annotated[int, Field(ge=1)] = 30
    """Inactivity that starts a new session."""


class SchedulerSection(Section):
    """What `personable serve` runs on a schedule."""

    segments_refresh_minutes: Annotated[float, Field(gt=0)] = 15.0
    """RFM, lifecycle, clusters' assignment, then every segment."""
    realtime_segments_interval_ms: Annotated[float, Field(gt=0)] = 1000.0
    """How often profiles touched by events are re-judged (a fresh=true read waits for it)."""
    models_maintain_hours: Annotated[float, Field(gt=0)] = 24.0
    """Retrain / drift check / score the models under models.maintain."""


ColumnMap = dict[str, Text]


class ImportsSection(Section):
    """Column mappings for `personable ingest --kind ...` (field: file column)."""

    events: ColumnMap | None = None
    crm: ColumnMap | None = None
    orders: ColumnMap | None = None


class ProjectFile(Section):
    """personable.yaml: a personable project's configuration (docs/configuration.md)."""

    name: str | None = None
    """The project's name (default: its folder's name)."""
    store: StoreSection = StoreSection()
    sources: list[Annotated[str, AfterValidator(_source_name)]] = ["web", "server"]
    """Event sources, each with its own write key (in .personable/keys.json or PERSONABLE_WRITE_KEY_<SOURCE>)."""
    server: ServerConfig = ServerConfig()
    events: EventsSection = EventsSection()
    identity: IdentitySection = IdentitySection()
    traits: TraitsSection = TraitsSection()
    sessions: SessionsSection = SessionsSection()
    quality: QualitySection = QualitySection()
    segments: Segments = {}
    """Segment id: definition (docs/segments.md)."""
    scheduler: SchedulerSection = SchedulerSection()
    models: ModelsSection = ModelsSection()
    rfm: RfmSection = RfmSection()
    lifecycle: LifecycleSection = LifecycleSection()
    recommend: RecommendConfig = RecommendConfig()
    imports: ImportsSection = ImportsSection()
    privacy: PrivacySection = PrivacySection()

    @model_validator(mode="after")
    def _one_order_event(self) -> "ProjectFile":
        given, legacy = self.events.order_event, self.rfm.order_event
        if given and legacy and given != legacy:
            fail([(("rfm", "order_event"), f"differs from events.order_event ({given!r}); what counts as an order "
                   "is configured once, in events.order_event", legacy)])
        return self

    @property
    def order_event(self) -> str:
        return self.events.order_event or self.rfm.order_event or ORDER_COMPLETED

    def to_config(self, project_dir: Path) -> Config:
        rfm = self.rfm.to_config(self.order_event)
        return Config(
            project_dir=project_dir, name=self.name or project_dir.resolve().name,
            offline_url=self.store.offline, online_url=self.store.online, bus_url=self.store.bus,
            sources=list(self.sources), server=self.server, identity=self.identity.to_config(),
            trait_default_policy=self.traits.default_policy, trait_policies=dict(self.traits.policies),
            session_timeout_minutes=self.sessions.timeout_minutes,
            max_future_skew_hours=self.events.max_future_skew_hours, order_event=self.order_event,
            imports={k: dict(v) for k, v in self.imports if v is not None},
            quality=self.quality.to_config(),
            segments=tuple(s.to_def(sid) for sid, s in self.segments.items()),
            segments_refresh_minutes=self.scheduler.segments_refresh_minutes,
            realtime_segments_interval_ms=self.scheduler.realtime_segments_interval_ms,
            rfm=rfm, lifecycle=LifecycleConfig(order_event=rfm.order_event, **self.lifecycle.model_dump()),
            models=self.models.to_config(), models_maintain_hours=self.scheduler.models_maintain_hours,
            recommend=self.recommend, privacy=self.privacy)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of personable.yaml, for editors (`personable config schema`)."""
    return copy.deepcopy(_json_schema())


@functools.cache
def _json_schema() -> dict[str, Any]:
    # Made once per process: it reads the sources for the field descriptions
    # (~0.1 s), and `personable init` writes it into every new project.
    return json_schema_of(ProjectFile, "personable.yaml")


def parse_config(raw: Any, project_dir: Path, origins: dict[str, str] | None = None) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError("personable.yaml must be a mapping at the top level",
                          details=[Problem("", f"must be a mapping, got {type(raw).__name__}")])
    try:
        parsed = ProjectFile.model_validate(raw)
    except ValidationError as exc:
        problems = [_name_origin(p, origins or {}) for p in problems_from(exc, ProjectFile)]
        raise ConfigError("personable.yaml is invalid", details=problems) from None
    return parsed.to_config(project_dir)


def _name_origin(problem: Problem, origins: dict[str, str]) -> Problem:
    """A problem with a value set from the environment (or with a key the
    environment added) says so."""
    for path, variable in origins.items():
        if problem.path == path or problem.path.startswith((path + ".", path + "[")) or \
                path.startswith(problem.path + "."):
            return Problem(problem.path, f"{problem.problem} (set by {variable})")
    return problem


def read_raw(project_dir: str | Path = ".", environ: dict[str, str] | None = None) -> tuple[Path, Any, dict[str, str]]:
    """The project folder, its personable.yaml as YAML data with the environment
    overrides applied, and which path each override set."""
    project_dir = Path(project_dir).resolve()
    path = project_dir / CONFIG_FILE
    if not path.exists():
        raise ProjectNotFound(
            f"no {CONFIG_FILE} in {project_dir}; run `personable init` there or pass --project DIR"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    origins = _apply_env_overrides(raw, dict(os.environ if environ is None else environ)) if isinstance(raw, dict) else {}
    return project_dir, raw, origins


def load_config(project_dir: str | Path = ".", environ: dict[str, str] | None = None) -> Config:
    project_dir, raw, origins = read_raw(project_dir, environ)
    return parse_config(raw, project_dir, origins)
