"""Segments on a project: definitions (personable.yaml and the API), full and
realtime refresh, membership history, sizes over time, exports. Reached as
``engine.segments``.

Realtime: after each batch the write path stores, every segment is
re-evaluated for the profiles that batch touched (``on_batch``), so a profile
enters or leaves as its own events arrive -- whatever the rule. What no event
can trigger is the passing of time: a rule with a window (``within``,
``older_than``, "not in the last 14 days") can become true or false for a
profile that did nothing. The scheduled full refresh (``refresh``; every
``segments_refresh_minutes`` under ``personable serve``) catches those. Rules on
batch-computed traits (RFM, lifecycle, clusters) change when those are recomputed.
"""

from __future__ import annotations

import builtins
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import orjson
import pyarrow as pa

from ..errors import ErrorList, NotFound, ValidationFailed
from .compile import REALTIME, clock_now, members_expr
from .config import SegmentDef, check_references, parse_segment, refresh_order
from ..ports import PROFILES_CHANGED, ProfilesChanged
from .rules import event_kinds

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from ..clock import Clock
    from ..config import Config
    from ..ports import Analytics, ComputedTraits, EventBus, SegmentStore
    from ..privacy.consent import ConsentPolicy
    from ..privacy.refusals import RefusalLog
    from .clusters_service import ClusterJobs

log = logging.getLogger("personable.segments")


Resolve = Callable[[str], "str | None"]


class SegmentService:
    def __init__(self, config: "Config", clock: "Clock", analytics: "Analytics", store: "SegmentStore",
                 computed: "ComputedTraits", bus: "EventBus", resolve: Resolve, policy: "ConsentPolicy",
                 refusals: "RefusalLog"):
        self.config, self.clock, self.analytics = config, clock, analytics
        self.policy, self.refusals = policy, refusals
        self.store, self.computed, self.bus, self.resolve = store, computed, bus, resolve
        self._parsed: dict[tuple[str, Any, str], SegmentDef | None] = {}
        # Realtime expressions built once per rule: the time is read from a table
        # (REALTIME), so the expression -- and the SQL the store compiles from it --
        # does not change from one batch to the next.
        self._realtime: dict[tuple[str, str], "ir.Table"] = {}

    # -- definitions -----------------------------------------------------------------------
    def definitions(self) -> list[SegmentDef]:
        """Segments from personable.yaml, then those created through the API
        (parsed once per version: this runs for every realtime evaluation)."""
        configured = list(self.config.segments)
        ids = {s.segment_id for s in configured}
        stored: list[SegmentDef] = []
        for segment_id, name, description, rule, updated_at in self.store.api_segments():
            if segment_id in ids:
                continue
            key = (segment_id, updated_at, rule)
            if key not in self._parsed:
                self._parsed[key] = parse_segment(segment_id, {"name": name, "description": description,
                                                          "rule": orjson.loads(rule)},
                                             f"segments.{segment_id}", ErrorList(), "api")
            parsed = self._parsed[key]
            if parsed:
                stored.append(parsed)
        return configured + stored

    def _get(self, segment_id: str) -> SegmentDef:
        for s in self.definitions():
            if s.segment_id == segment_id:
                return s
        raise NotFound(f"no segment {segment_id!r}; see `personable segments list`")

    def create(self, segment_id: str, definition: dict[str, Any], refresh: bool = True) -> dict[str, Any]:
        """Define (or redefine) a segment through the API; it is refreshed at once."""
        errors = ErrorList()
        seg = parse_segment(segment_id, definition, "segment", errors, origin="api")
        existing = self.definitions()
        if seg is not None:
            if any(s.segment_id == segment_id and s.origin == "config" for s in existing):
                errors.add("segment", f"{segment_id!r} is defined in personable.yaml; change it there")
            others = [s for s in existing if s.segment_id != segment_id] + [seg]
            check_references(others, errors)
        if errors or seg is None:
            raise ValidationFailed(f"segment {segment_id!r} is not valid", details=errors.items)
        now = self.clock.now()
        self.store.save_segment(seg.segment_id, seg.name, seg.description, seg.raw_rule, "api", now)
        if refresh:
            self.refresh([segment_id], cause="created")
        return self.show(segment_id)

    def delete(self, segment_id: str) -> None:
        seg = self._get(segment_id)
        if seg.origin == "config":
            raise ValidationFailed(f"{segment_id!r} is defined in personable.yaml; remove it there")
        users = [s.segment_id for s in self.definitions() if segment_id in s.depends_on]
        if users:
            raise ValidationFailed(f"{segment_id!r} is used by {', '.join(users)}")
        self.store.delete_segment(segment_id, self.clock.now())

    def sync_definitions(self) -> None:
        """Record personable.yaml's segments in the store. Done at start too: a
        segment's size is read with its definition, and realtime judging fills
        memberships before the first scheduled refresh gets to run."""
        now = self.clock.now()
        for s in self.config.segments:
            self.store.save_segment(s.segment_id, s.name, s.description, s.raw_rule, "config", now)

    # -- refresh -------------------------------------------------------------------------------
    def refresh(self, segment_ids: list[str] | None = None, cause: str = "refresh") -> dict[str, Any]:
        """Recompute membership of every segment (or the given ones, and the
        segments they depend on come first), recording who entered and left."""
        self.sync_definitions()
        segments = refresh_order(self.definitions())
        if segment_ids is not None:
            unknown = set(segment_ids) - {s.segment_id for s in segments}
            if unknown:
                raise NotFound(f"no segment {', '.join(sorted(unknown))}")
        now = self.clock.now()
        results, changed = [], set()
        for seg in segments:
            if segment_ids is not None and seg.segment_id not in segment_ids:
                continue
            started = time.perf_counter()
            entered, exited, size = self.store.refresh_membership(seg.segment_id, members_expr(seg.rule, now), now,
                                                                  cause)
            self._publish(seg.segment_id, entered, exited, now, cause)
            changed.update(entered)
            changed.update(exited)
            results.append({"segment_id": seg.segment_id, "size": size, "entered": len(entered),
                            "exited": len(exited), "seconds": round(time.perf_counter() - started, 3)})
        self._changed(changed, "segments")
        return {"at": now.isoformat(), "segments": results}

    def on_batch(self, profile_ids: list[str]) -> set[str]:
        """Realtime: re-judge every segment for the profiles a batch touched;
        returns the profiles that entered or left a segment."""
        segments = self.definitions()
        if not segments or not profile_ids:
            return set()
        now = self.clock.now()
        among = pa.table({"profile_id": pa.array(profile_ids, pa.string())})
        moved, changes = set(), []
        names: set[str] = set()
        types: set[str] = set()
        for seg in segments:
            n, t = event_kinds(seg.rule)
            names |= n
            types |= t
        with self.store.realtime_session(among, now, sorted(names), sorted(types)) as session:
            for seg in refresh_order(segments):
                entered, exited = session.apply(seg.segment_id, session.run(self.realtime_expr(seg)), "event")
                changes.append((seg.segment_id, entered, exited))
                moved.update(entered)
                moved.update(exited)
        for segment_id, entered, exited in changes:  # after the commit: subscribers see stored membership
            self._publish(segment_id, entered, exited, now, "event")
        return moved

    def cluster_model(self) -> dict[str, Any]:
        """The current cluster model's description: method, scores per k, descriptions, stability."""
        return self._clusters().model()[1]

    def _clusters(self) -> "ClusterJobs":
        from .clusters_service import ClusterJobs

        return ClusterJobs(self.config, self.clock, self.analytics, self.computed, self.bus)

    def _changed(self, profiles: set[str], origin: str) -> None:
        if profiles:
            self.bus.publish(PROFILES_CHANGED, ProfilesChanged(tuple(sorted(profiles)), origin=origin))

    def realtime_expr(self, seg: SegmentDef) -> "ir.Table":
        key = (seg.segment_id, orjson.dumps(seg.raw_rule, option=orjson.OPT_SORT_KEYS).decode())
        expr = self._realtime.get(key)
        if expr is None:
            expr = self._realtime[key] = members_expr(seg.rule, clock_now(), REALTIME)
        return expr

    def _publish(self, segment_id: str, entered: list[str], exited: list[str], now: Any, cause: str) -> None:
        at = now.isoformat()
        for pid in entered:
            self.bus.publish("segment.entered", {"segment_id": segment_id, "profile_id": pid, "at": at, "cause": cause})
        for pid in exited:
            self.bus.publish("segment.exited", {"segment_id": segment_id, "profile_id": pid, "at": at, "cause": cause})

    # -- computed traits: RFM and lifecycle ----------------------------------------------------------
    def compute(self) -> dict[str, Any]:
        """RFM scores and segments, and lifecycle stages, for every profile, as
        computed traits (on profiles, usable in rules as ``computed:``); stage and
        segment changes are kept as transitions with their time."""
        from .lifecycle import lifecycle_table
        from .rfm import RFM_KEYS, rfm_table

        computed, now = self.computed, self.clock.now()
        started = time.perf_counter()
        rfm = self.analytics.execute(rfm_table(self.config.rfm, now))
        changed = set(computed.write_computed(list(RFM_KEYS), rfm, now, history_keys=("rfm_segment",)))
        stages = self.analytics.execute(lifecycle_table(self.config.lifecycle, now))
        changed |= set(computed.write_computed(["lifecycle_stage"], stages, now, history_keys=("lifecycle_stage",)))
        self._changed(changed, "computed")
        clusters = None
        if (self.config.state_dir / "models" / "clusters.joblib").exists():
            clusters = self.assign_clusters()  # new profiles join the existing clusters
        return {"at": now.isoformat(), "customers_scored": rfm.num_rows, "profiles_staged": stages.num_rows,
                "clusters": clusters,
                "changed_profiles": len(changed), "seconds": round(time.perf_counter() - started, 3),
                "rfm_segments": computed.computed_distribution("rfm_segment"),
                "lifecycle_stages": computed.computed_distribution("lifecycle_stage")}

    def cluster(self, method: str = "kmeans", n_clusters: int | str = "auto", pca: float | int | None = None,
                features: tuple[str, ...] | None = None, stability_boots: int = 5,
                population: str = "customers") -> dict[str, Any]:
        """Fit behavioural clusters; every profile with enough events gets ``computed.cluster``."""
        return self._clusters().fit(method, n_clusters, pca, features, stability_boots, population)

    def assign_clusters(self) -> dict[str, Any]:
        return self._clusters().assign()

    def transitions(self, profile: str, key: str | None = None) -> list[dict[str, Any]]:
        pid = self.resolve(profile) or profile
        return self.computed.computed_history(pid, key)

    # -- reading -------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        stored = {r["segment_id"]: r for r in self.store.stored_segments()}
        out = []
        for s in self.definitions():
            row = stored.get(s.segment_id, {})
            out.append({**s.as_dict(), "size": row.get("size", 0), "refreshed_at": row.get("refreshed_at")})
        return out

    def show(self, segment_id: str) -> dict[str, Any]:
        seg = self._get(segment_id)
        row = next((r for r in self.store.stored_segments() if r["segment_id"] == segment_id), {})
        return {**seg.as_dict(), "size": row.get("size", 0), "refreshed_at": row.get("refreshed_at"),
                "sizes": self.store.segment_sizes(segment_id)}

    def members(self, segment_id: str, limit: int = 100, offset: int = 0) -> builtins.list[dict[str, Any]]:
        self._get(segment_id)
        return self.store.segment_members(segment_id, limit, offset)

    def history(self, profile: str | None = None, segment_id: str | None = None, limit: int = 200) -> builtins.list[dict[str, Any]]:
        pid = (self.resolve(profile) or profile) if profile else None
        return self.store.membership_history(pid, segment_id, limit)

    def export(self, segment_id: str, path: str, fmt: str | None = None) -> dict[str, Any]:
        self._get(segment_id)
        fmt = fmt or ("parquet" if str(path).endswith(".parquet") else "csv")
        # An export leaves the project (to an ad platform, an email tool): only
        # members the consent policy allows for its purpose go; each refusal is recorded.
        from ..tables import SEGMENT_MEMBERS as M

        purpose = self.policy.purpose_for("segment_export")
        verdicts = self.analytics.execute(self.policy.verdicts(purpose, M.filter(M.segment_id == segment_id)))
        refused = [(p, r) for p, a, r in zip(*(verdicts.column(c).to_pylist() for c in ("profile_id", "allowed", "reason")))
                   if not a]
        n = self.store.export_members(segment_id, path, fmt, exclude=[p for p, _ in refused])
        self.refusals.refused_many("segment_export", purpose, refused)
        return {"segment_id": segment_id, "path": str(path), "format": fmt, "members": n, "purpose": purpose,
                "refused": len(refused)}
