"""Project configuration: ``personable.yaml`` plus ``PERSONABLE_*`` overrides.

A project is a folder holding ``personable.yaml`` and a state folder
``.personable/``. Secrets (write keys, the admin token) never live in the YAML
file: they come from the environment or from ``.personable/keys.json``, which
``personable init`` creates with owner-only permissions.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, ErrorList, ProjectNotFound
from .identity.resolution.config import ResolutionConfig, parse_resolution
from .predict.config import ModelsConfig, parse_models
from .quality.config import QualityConfig, parse_quality
from .recommend.config import RecommendConfig, parse_recommend
from .segments.config import SegmentDef, parse_segments
from .segments.lifecycle import LifecycleConfig, parse_lifecycle
from .segments.rfm import RfmConfig, parse_rfm

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


@dataclass
class IdentifierRule:
    trait: str
    kind: str  # email | phone | external
    hash: bool = True


@dataclass
class IdentityConfig:
    identifiers: list[IdentifierRule]
    junk_values: frozenset[str]
    max_user_ids_per_profile: int = 1
    default_region: str = "US"
    max_ids_per_identifier: int = 20
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8787
    max_body_bytes: int = 5_000_000  # RudderStack SDKs send batches of up to 4 MB
    commit_interval_ms: float = 2.0
    max_batch_events: int = 5_000
    store_threads: int = 1
    # The only folders server routes may read imports from / write exports to
    # (relative to the project folder); the local CLI is not confined.
    import_dir: str = "imports"
    export_dir: str = "exports"


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

    @property
    def state_dir(self) -> Path:
        return self.project_dir / STATE_DIR

    # -- secrets -------------------------------------------------------------
    def _keys_file(self) -> dict[str, Any]:
        path = self.state_dir / KEYS_FILE
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
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


STARTER = """\
# personable project configuration -- configuration as code, review it in git.
# Every value can be overridden from the environment: PERSONABLE_<SECTION>__<KEY>,
# e.g. PERSONABLE_SERVER__PORT=9000. Secrets never belong in this file: write keys
# and the admin token live in .personable/keys.json (created by `personable init`,
# readable only by you) or in PERSONABLE_WRITE_KEY_<SOURCE> / PERSONABLE_ADMIN_TOKEN.
name: {name}

# Where data lives. Adapters are chosen by URL scheme; relative paths are
# relative to this folder. The embedded default needs no server at all.
store:
  offline: duckdb:///.personable/store.duckdb   # event log + analytical tables
  online: sqlite:///.personable/online.sqlite   # profile documents for fast lookups, kept current by
                                                # the write path; duckdb:// reads the offline file instead
  bus: file:///.personable/bus                  # durable event log: the HTTP path acknowledges once an
                                                # event is here; a worker moves it into the store.
                                                # memory:// writes to the store on the request path instead

# Event sources. Each has its own write key (HTTP Basic auth user, as Segment does).
sources:
  - web
  - server

server:
  host: 127.0.0.1
  port: 8787
  max_body_bytes: 5000000       # larger request bodies get a 413 (RudderStack batches reach 4 MB)
  commit_interval_ms: 2         # group-commit window; an event is acknowledged once durable
  store_threads: 1              # DuckDB threads while serving: leaves cores for requests (0: all)
  import_dir: imports           # the server reads imported files only from here (relative: to the project)
  export_dir: exports           # ... and writes segment exports only here

events:
  max_future_skew_hours: 24     # timestamps further ahead than this are rejected

# Identity stitching: userId, anonymousId and alias always link; the traits below
# link profiles too (normalized, then SHA-256 hashed before they are stored).
identity:
  default_region: US            # for phone numbers written without a country code
  max_user_ids_per_profile: 1   # an identify never merges two known users (alias can)
  max_ids_per_identifier: 20    # an email / phone carried by more user + anonymous ids is
                                # shared (a switchboard): it links nothing, and is reported
  identifiers:
    - trait: email
      kind: email
    - trait: phone
      kind: phone
  junk_values:                  # in addition to the built-in list (null, undefined, 0, ...)
    - test@test.com
    - "0000000000"
  # Probabilistic resolution (`personable resolve`): finds the same person behind
  # profiles no shared id links (typos, a CRM duplicate without an email, ...).
  resolution:
    fields:                     # trait: how two values are compared
      first_name: name          # exact, then Jaro-Winkler levels
      last_name: name
      email: email              # exact, then the user name, then fuzzy
      phone: phone              # exact, then Levenshtein <= 1, <= 2
      birth_date: date          # exact, typo, within a month / a year / ten years
      postcode: postcode
      city: text
      country: exact
    blocking:                   # candidate pairs agree on every field of one rule
      - [email]
      - [phone]
      - [first_name, last_name]
      - [birth_date, first_name]
      - [birth_date, last_name]
      - [birth_date, postcode]
    match_probability: 0.95     # at or above: merged (and explained, and undoable)
    review_probability: 0.6     # between the two: `personable resolve review`
    max_shared: 5               # an email or phone on more records is not evidence
    max_cluster_size: 10        # a bigger cluster is blocked and reported, not merged

# How traits merge when several sources disagree.
traits:
  default_policy: last_write_wins   # by event time; or first_write_wins
  policies:
    first_source: first_write_wins

sessions:
  timeout_minutes: 30

# Data quality: how each trait is standardized on ingest (and by `personable
# quality clean` over what is stored), the rules a record must pass (failing
# records are kept with the field flagged invalid; on_invalid: quarantine sends them
# to quarantine, naming the rule), and
# what fills a missing value (`personable quality impute`; imputed values are
# marked as such and give way to the first real observation).
quality:
  reporting_currency: USD
  currency_rates:               # 1 unit of the currency in the reporting currency
    EUR: 1.08
    GBP: 1.27
  fields:
    email:
      standardize: email        # lower-case, syntax checked
      rules: {{unique: true, freshness: 730d}}
    phone:
      standardize: phone        # E.164
      region_from: country      # local numbers are read in the record's country
    first_name: {{standardize: name, rules: {{required: true}}}}
    last_name: {{standardize: name}}
    country:
      standardize: country      # ISO 3166 alpha-2
      missing: {{derive: country_from_phone}}
    birth_date:
      standardize: date         # ISO 8601; ISO input, then these formats, in order
      formats: ["%d/%m/%Y", "%m-%d-%Y"]
      rules: {{min: "1900-01-01", max: today}}
    signup_date:
      standardize: date
      formats: ["%d/%m/%Y", "%m-%d-%Y"]
    city: {{standardize: name}}
    postcode: {{standardize: text}}

# Segments: rules on traits, computed traits (revenue, order_count, last_seen,
# rfm_segment, lifecycle_stage, cluster, ...) and behaviour. Membership is
# updated as events arrive and by a full refresh every
# scheduler.segments_refresh_minutes; see docs/segments.md.
segments:
  big_spenders:
    name: Big spenders
    rule: {{computed: revenue, gt: 300}}
  high_value_at_risk:
    name: High-value customers at risk
    description: big spenders who ordered twice in 90 days, but not in the last 21
    rule:
      all:
        - in_segment: big_spenders
        - {{event: Order Completed, count: {{gte: 2}}, within: 90d}}
        - not: {{event: Order Completed, within: 21d}}
  cart_abandoners:
    name: Abandoned a cart this week
    rule:
      all:
        - {{event: Product Added, within: 7d}}
        - not: {{event: Order Completed, within: 7d}}
  champions:
    rule: {{computed: rfm_segment, eq: Champions}}

scheduler:
  segments_refresh_minutes: 15  # RFM, lifecycle, clusters' assignment, then every segment
  realtime_segments_interval_ms: 1000  # under `personable serve`, profiles touched by events are
                                       # re-judged this often (a fresh=true read waits for it)
  models_maintain_hours: 24     # retrain / drift check / score the models under models.maintain

# Predictive models (docs/models.md): `personable models train churn`, then
# `personable models score churn` writes churn_risk on every profile.
models:
  horizon_days: 30              # how far ahead churn, CLV and next purchase look
  drift: {{psi: 0.2, ks_pvalue: 0.01}}  # a feature or score drifted past either line
  maintain: {{}}                  # opt-in, e.g. churn: {{retrain_days: 7, retrain_on_drift: true}}

# RFM (recency, frequency, monetary; quintile scores 1-5 and named segments) and
# lifecycle stages become computed traits on every profile.
rfm:
  order_event: Order Completed
lifecycle:
  new_days: 30                  # first order at most this long ago
  active_days: 90               # last order at most this long ago
  lapsed_days: 180              # longer ago: lapsed (between: at_risk)
  loyal_orders: 3               # active with at least this many orders
  reactivated_days: 30          # ordered this recently after a gap longer than lapsed_days

# Recommendations (docs/recommendations.md): `personable recommend catalog
# catalog.csv`, `personable recommend train`, then GET /v1/recommendations/{{id}}.
recommend:
  weights: {{Product Viewed: 1, Product Added: 3, Order Completed: 5}}
  generators: [als, ease, cooccurrence, complementary, content, same_category, trending, popularity]
  top_n: 50                     # precomputed per profile
  retrain_hours: 0              # under `personable serve`, retrain this often (0: by hand, `recommend train`)
  fallback_group: rfm_segment   # cold start: popular among profiles in the same RFM segment
  placements:
    home: {{n: 10, max_per_category: 3, diversity: 0.3}}
    cart: {{n: 6, exclude_purchased: false}}

# Column mappings for `personable ingest --kind crm|orders` (file column: field).
imports:
  crm:
    user_id: customer_id
    email: email
    phone: phone
    first_name: first_name
    last_name: last_name
    country: country
    timestamp: updated_at
  orders:
    user_id: customer_id
    order_id: order_id
    revenue: total
    currency: currency
    timestamp: ordered_at
"""


def write_starter(project_dir: Path, name: str | None = None, force: bool = False) -> Path:
    project_dir.mkdir(parents=True, exist_ok=True)
    path = project_dir / CONFIG_FILE
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    path.write_text(STARTER.format(name=name or project_dir.resolve().name))
    ensure_state(project_dir)
    return path


def ensure_state(project_dir: Path) -> Path:
    """Create ``.personable/`` with a keys file holding fresh secrets if missing."""
    state = project_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
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


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> None:
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


def _get(raw: dict, path: str, kind: type | tuple, default: Any, errors: ErrorList) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node or node[part] is None:
            return default
        node = node[part]
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or (isinstance(node, bool) and kind in (int, float)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        errors.add(path, f"must be {names}, got {type(node).__name__} {node!r}")
        return default
    return node


def parse_config(raw: dict[str, Any], project_dir: Path) -> Config:
    errors = ErrorList()
    if not isinstance(raw, dict):
        raise ConfigError("personable.yaml must be a mapping at the top level")
    offline = _get(raw, "store.offline", str, "duckdb:///.personable/store.duckdb", errors)
    online = _get(raw, "store.online", str, "sqlite:///.personable/online.sqlite", errors)
    bus = _get(raw, "store.bus", str, "file:///.personable/bus", errors)
    sources = _get(raw, "sources", list, ["web", "server"], errors)
    for i, s in enumerate(sources):
        if not isinstance(s, str) or not s.isidentifier():
            errors.add(f"sources[{i}]", f"must be a simple name (letters, digits, _), got {s!r}")
    server = ServerConfig(
        host=_get(raw, "server.host", str, "127.0.0.1", errors),
        port=_get(raw, "server.port", int, 8787, errors),
        max_body_bytes=_get(raw, "server.max_body_bytes", int, 5_000_000, errors),
        commit_interval_ms=_get(raw, "server.commit_interval_ms", float, 2.0, errors),
        max_batch_events=_get(raw, "server.max_batch_events", int, 5_000, errors),
        store_threads=_get(raw, "server.store_threads", int, 1, errors),
        import_dir=_get(raw, "server.import_dir", str, "imports", errors),
        export_dir=_get(raw, "server.export_dir", str, "exports", errors),
    )
    if not 0 < server.port < 65536:
        errors.add("server.port", f"must be between 1 and 65535, got {server.port}")
    if server.max_body_bytes < 1024:
        errors.add("server.max_body_bytes", "must be at least 1024")
    idents_raw = _get(raw, "identity.identifiers", list, list(DEFAULT_IDENTIFIERS), errors)
    identifiers: list[IdentifierRule] = []
    for i, item in enumerate(idents_raw):
        if not isinstance(item, dict) or not isinstance(item.get("trait"), str):
            errors.add(f"identity.identifiers[{i}]", "must be a mapping with a 'trait' name")
            continue
        kind = item.get("kind", "external")
        if kind not in IDENTIFIER_KINDS:
            errors.add(f"identity.identifiers[{i}].kind", f"must be one of {', '.join(IDENTIFIER_KINDS)}, got {kind!r}")
            continue
        identifiers.append(IdentifierRule(trait=item["trait"], kind=kind, hash=bool(item.get("hash", True))))
    junk_extra = _get(raw, "identity.junk_values", list, [], errors)
    identity = IdentityConfig(
        identifiers=identifiers,
        junk_values=frozenset(list(DEFAULT_JUNK_VALUES) + [str(v).strip().lower() for v in junk_extra]),
        max_user_ids_per_profile=_get(raw, "identity.max_user_ids_per_profile", int, 1, errors),
        default_region=_get(raw, "identity.default_region", str, "US", errors).upper(),
        max_ids_per_identifier=_get(raw, "identity.max_ids_per_identifier", int, 20, errors),
        resolution=parse_resolution((raw.get("identity") or {}).get("resolution") if isinstance(raw.get("identity"), dict) else None, errors),
    )
    if identity.max_user_ids_per_profile < 1:
        errors.add("identity.max_user_ids_per_profile", "must be at least 1")
    default_policy = _get(raw, "traits.default_policy", str, "last_write_wins", errors)
    if default_policy not in TRAIT_POLICIES:
        errors.add("traits.default_policy", f"must be one of {', '.join(TRAIT_POLICIES)}, got {default_policy!r}")
    policies = _get(raw, "traits.policies", dict, {}, errors)
    for key, pol in policies.items():
        if pol not in TRAIT_POLICIES:
            errors.add(f"traits.policies.{key}", f"must be one of {', '.join(TRAIT_POLICIES)}, got {pol!r}")
    imports = _get(raw, "imports", dict, {}, errors)
    for kind, mapping in imports.items():
        if kind not in ("events", "crm", "orders"):
            errors.add(f"imports.{kind}", "unknown import kind; use events, crm or orders")
        elif not isinstance(mapping, dict):
            errors.add(f"imports.{kind}", "must be a mapping of field: file column")
    cfg = Config(
        project_dir=project_dir,
        name=_get(raw, "name", str, project_dir.resolve().name, errors),
        offline_url=offline,
        online_url=online,
        bus_url=bus,
        sources=list(sources),
        server=server,
        identity=identity,
        trait_default_policy=default_policy,
        trait_policies=dict(policies),
        session_timeout_minutes=_get(raw, "sessions.timeout_minutes", int, 30, errors),
        max_future_skew_hours=_get(raw, "events.max_future_skew_hours", float, 24.0, errors),
        imports={k: v for k, v in imports.items() if isinstance(v, dict)},
        quality=parse_quality(raw.get("quality"), errors),
        segments=parse_segments(raw.get("segments"), errors),
        segments_refresh_minutes=_get(raw, "scheduler.segments_refresh_minutes", float, 15.0, errors),
        realtime_segments_interval_ms=_get(raw, "scheduler.realtime_segments_interval_ms", float, 1000.0, errors),
        rfm=(rfm := parse_rfm(raw.get("rfm"), errors)),
        lifecycle=parse_lifecycle(raw.get("lifecycle"), errors, rfm.order_event),
        models=parse_models(raw.get("models"), errors),
        models_maintain_hours=_get(raw, "scheduler.models_maintain_hours", float, 24.0, errors),
        recommend=parse_recommend(raw.get("recommend"), errors),
    )
    if errors:
        raise ConfigError("personable.yaml is invalid", details=errors.items)
    return cfg


def load_config(project_dir: str | Path = ".", environ: dict[str, str] | None = None) -> Config:
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
    _apply_env_overrides(raw, dict(os.environ if environ is None else environ))
    return parse_config(raw, project_dir)
