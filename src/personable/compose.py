"""The composition root: configuration -> adapters -> services, each once.

Adapters are picked by URL scheme (``adapters.registry``); every service gets
only the narrow ports it uses. Cross-cutting reactions are wired here as bus
subscriptions: realtime segments, then the online projection, both on
``profiles.changed``. Services heavy to import (models, recommendations,
resolution) are built on first use, and once.
"""

from __future__ import annotations

import enum
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, cast

from .adapters.registry import open_adapter, open_event_log
from .bus import InProcessBus
from .clock import Clock, SystemClock
from .config import Config
from .errors import ConfigError
from .ingest.pipeline import WritePath
from .ports import (PROFILES_CHANGED, Analytics, Catalog, ComputedTraits, EventLog, EventWrites, ModelRegistry,
                    OnlineStore, ProfileMerges, ProfileProjection, ProfileReads, QualityStore, ResolutionLedger,
                    SegmentStore)
from .ports.audit import AuditStore
from .ports.retention import RetentionStore
from .ports.consent import ConsentStore
from .ports.erasure import ErasureStore
from .ports.identity_keys import IdentityKeyStore
from .identity.keyed import IdentityHasher
from .access.tokens import project_secret
from .privacy.audit import AuditLog
from .privacy.consent import ConsentPolicy
from .privacy.erasure import Erasure
from .privacy.export import PersonalDataExport
from .privacy.retention import Retention
from .privacy.files import protect
from .privacy.identity_keys import identity_keys
from .privacy.refusals import RefusalLog
from .privacy.rekey import IdentityRekey
from .privacy.service import PrivacyService
from .profiles.projection import OnlineProjection
from .segments.realtime import RealtimeSegments
from .segments.service import SegmentService

if TYPE_CHECKING:
    from .identity.resolution.service import ResolutionService
    from .predict.service import ModelsService
    from .quality.service import QualityService
    from .recommend.service import RecommendService

log = logging.getLogger("personable")


class OfflineBackend(EventWrites, Analytics, SegmentStore, ComputedTraits, ModelRegistry, ResolutionLedger,
                     ProfileMerges, QualityStore, Catalog, ProfileProjection, ConsentStore, AuditStore,
                     RetentionStore, ErasureStore, IdentityKeyStore, Protocol):
    """Every port an offline store serves. Only this module sees it whole; each
    service is handed the one or two ports it needs."""

    capabilities: frozenset[str]

    @property
    def schema_version(self) -> int: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


# What an Engine needs of its offline store beyond the write path and analytics.
SERVED_BY_ENGINE = frozenset({"offline", "segments", "computed_traits", "models", "resolution", "quality_jobs",
                              "catalog", "consent", "audit", "erasure", "identity_keys"})


class Configured(enum.Enum):
    """The adapter the configuration names (a default that is not None, which means "none")."""
    TOKEN = "configured"


CONFIGURED = Configured.TOKEN


class Components:
    def __init__(self, config: Config, clock: Clock | None = None,
                 event_log: EventLog | None | Configured = CONFIGURED):
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.bus = InProcessBus()
        protect(config.state_dir)     # before the stores create their files in it, and again after
        self.offline: OfflineBackend = open_adapter(config.offline_url, config.project_dir)
        try:
            self._open_rest(config, event_log)
        except BaseException:
            self.offline.close()   # an unreachable online store must not leave the offline file locked
            raise
        protect(config.state_dir)

    def _open_rest(self, config: Config, event_log: EventLog | None | Configured) -> None:
        missing = sorted(SERVED_BY_ENGINE - self.offline.capabilities)
        if missing:
            raise ConfigError(f"store.offline {config.offline_url.split('://')[0]}:// does not serve "
                              f"{', '.join(missing)} yet, which a project needs; it serves "
                              f"{', '.join(sorted(self.offline.capabilities))}. Use duckdb:// for now "
                              "(docs/architecture.md, 'Where it stands')")
        online_url = config.online_url
        # "duckdb://" with no path: online reads come straight from the offline file,
        # nothing is projected.
        self.materialized: OnlineStore | None = None
        if online_url in ("duckdb://", ""):
            if "online" not in self.offline.capabilities:
                raise ConfigError(f"store.online {online_url!r} reads from the offline store, which cannot serve "
                                  "request-path reads; use sqlite:// or redis://")
            self.online: ProfileReads = cast(ProfileReads, self.offline)   # the capability says it serves them
        else:
            self.materialized = open_adapter(online_url, config.project_dir)
            self.online = self.materialized
        self.log: EventLog | None = (open_event_log(config.bus_url, config.project_dir)
                                     if event_log is CONFIGURED else event_log)
        # Emails and phones are stored as keyed digests (identity/keyed.py): one hasher, for writes and lookups.
        self.hasher = IdentityHasher(identity_keys(config.state_dir))
        self.write_path = WritePath(config, self.hasher)
        # Consent: one policy, asked by every use; one log of its refusals.
        self.policy = ConsentPolicy(config.privacy)
        self.refusals = RefusalLog(self.offline, self.clock)
        # Who read or changed what, chained and signed (privacy/audit.py).
        state = config.state_dir
        self.audit = AuditLog(self.offline, self.clock, project_secret(state, "audit_key"),
                              project_secret(state, "audit_signing_key"), state / "audit" / "checkpoints.jsonl")
        self.segments = SegmentService(config, self.clock, self.offline, self.offline, self.offline, self.bus,
                                       self.resolve, self.policy, self.refusals)
        self.segments.sync_definitions()
        exporter = PersonalDataExport(self.clock, self.offline, self.online, self.offline, self.segments, self.audit,
                                      self.offline, self.resolve, config.privacy.policy_version)
        retention = Retention(config.privacy.retention, self.clock, self.offline)
        erasure = Erasure(config.privacy, self.clock, self.offline, self.online, self.materialized, self.audit,
                          self.resolve, self.hasher, config.identity.default_region,
                          [state / "models", state / "recommend"], config.project_dir / config.server.export_dir, state)
        hashed = sorted({r.kind for r in config.identity.identifiers if r.hash})
        self.rekey = IdentityRekey(self.clock, self.offline, self.hasher, hashed, state,
                                                self.materialized, self._reproject)
        self.privacy = PrivacyService(self.policy, self.clock, self.offline, self.online, self.bus, self.refusals,
                                      self.resolve, exporter, retention, self.offline,
                                      lambda: [d.segment_id for d in self.segments.definitions()], erasure,
                                      self.rekey)
        self.realtime = RealtimeSegments(self.segments, self.bus)
        self.bus.subscribe(PROFILES_CHANGED, self.realtime.on_changed)   # first: documents show its verdicts
        self.projection: OnlineProjection | None = None
        if self.materialized is not None:
            self.projection = OnlineProjection(self.offline, self.materialized)
            self.bus.subscribe(PROFILES_CHANGED, self.projection.on_changed)
        self.rekey.converge()       # a store from before identity keys, or a rotation cut short

    def resolve(self, identifier: str) -> str | None:
        return self.online.resolve(identifier, self.config.identity.default_region, self.hasher)

    def _reproject(self) -> int:
        """Every profile written to the online store again (after a re-keying)."""
        if self.projection is None:
            return 0
        profile_ids, newest = self.offline.changed_since(None)
        self.projection.project(profile_ids, [], newest)
        return len(profile_ids)

    @cached_property
    def quality(self) -> "QualityService":
        from .quality.service import QualityService

        return QualityService(self.config, self.clock, self.offline, self.offline, self.bus)

    @cached_property
    def models(self) -> "ModelsService":
        from .predict.service import ModelsService

        return ModelsService(self.config, self.clock, self.offline, self.offline, self.offline, self.bus,
                             self.policy, self.refusals)

    @cached_property
    def recommend(self) -> "RecommendService":
        from .recommend.service import RecommendService

        return RecommendService(self.config, self.clock, self.offline, self.offline, self.offline, self.online,
                                self.resolve, self.policy, self.refusals)

    @cached_property
    def resolution(self) -> "ResolutionService":
        from .identity.resolution.service import ResolutionService

        return ResolutionService(self.config, self.clock, self.offline, self.offline, self.write_path.settings,
                                 self.bus, self.resolve)

    def close(self) -> None:
        for pending in (self.refusals.flush, self.audit.flush):
            try:
                pending()
            except Exception:   # closing goes on: the store may be what failed
                log.exception("%s could not be written on close", pending.__qualname__)
        if self.projection is not None:
            self.projection.close()
        if self.log is not None:
            self.log.close()
        if self.materialized is not None:
            self.materialized.close()
        self.offline.close()
        protect(self.config.state_dir)     # what the stores made since they opened (a new WAL) too


def compose(config: Config, clock: Clock | None = None,
            event_log: EventLog | None | Configured = CONFIGURED) -> Components:
    return Components(config, clock, event_log)
