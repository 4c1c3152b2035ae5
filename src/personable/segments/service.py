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

import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from ..errors import ErrorList, NotFound, ValidationFailed
from .compile import REALTIME, clock_now, members_expr
from .config import SegmentDef, check_references, parse_segment, refresh_order
from .rules import event_kinds

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("personable.segments")


class SegmentService:
    def __init__(self, engine: "Engine"):
        self.engine = engine

    # -- definitions -----------------------------------------------------------------------
    def definitions(self) -> list[SegmentDef]:
        """Segments from personable.yaml, then those created through the API
        (parsed once per version: this runs for every realtime evaluation)."""
        configured = list(self.engine.config.segments)
        ids = {s.segment_id for s in configured}
        stored = []
        for segment_id, name, description, rule, updated_at in self.engine.store.api_segments():
            if segment_id in ids:
                continue
            key = (segment_id, updated_at, rule)
            if key not in _PARSED:
                _PARSED[key] = parse_segment(segment_id, {"name": name, "description": description,
                                                          "rule": orjson.loads(rule)},
                                             f"segments.{segment_id}", ErrorList(), "api")
            if _PARSED[key]:
                stored.append(_PARSED[key])
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
        now = self.engine.clock.now()
        self.engine.store.save_segment(seg.segment_id, seg.name, seg.description, seg.raw_rule, "api", now)
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
        self.engine.store.delete_segment(segment_id, self.engine.clock.now())

    def _sync_definitions(self) -> None:
        now = self.engine.clock.now()
        for s in self.engine.config.segments:
            self.engine.store.save_segment(s.segment_id, s.name, s.description, s.raw_rule, "config", now)

    # -- refresh -------------------------------------------------------------------------------
    def refresh(self, segment_ids: list[str] | None = None, cause: str = "refresh") -> dict[str, Any]:
        """Recompute membership of every segment (or the given ones, and the
        segments they depend on come first), recording who entered and left."""
        self._sync_definitions()
        segments = refresh_order(self.definitions())
        if segment_ids is not None:
            unknown = set(segment_ids) - {s.segment_id for s in segments}
            if unknown:
                raise NotFound(f"no segment {', '.join(sorted(unknown))}")
        now = self.engine.clock.now()
        results, changed = [], set()
        for seg in segments:
            if segment_ids is not None and seg.segment_id not in segment_ids:
                continue
            started = time.perf_counter()
            members = self.engine.store.run(members_expr(seg.rule, now))
            entered, exited = self.engine.store.apply_membership(seg.segment_id, members, now, cause)
            self._publish(seg.segment_id, entered, exited, now, cause)
            changed.update(entered)
            changed.update(exited)
            results.append({"segment_id": seg.segment_id, "size": members.num_rows, "entered": len(entered),
                            "exited": len(exited), "seconds": round(time.perf_counter() - started, 3)})
        if changed:
            self.engine._sync_online(sorted(changed), [], None)
        return {"at": now.isoformat(), "segments": results}

    def on_batch(self, profile_ids: list[str]) -> set[str]:
        """Realtime: re-judge every segment for the profiles a batch touched;
        returns the profiles that entered or left a segment."""
        segments = self.definitions()
        if not segments or not profile_ids:
            return set()
        now = self.engine.clock.now()
        among = pa.table({"profile_id": pa.array(profile_ids, pa.string())})
        moved, changes = set(), []
        names: set[str] = set()
        types: set[str] = set()
        for seg in segments:
            n, t = event_kinds(seg.rule)
            names |= n
            types |= t
        with self.engine.store.realtime_session(among, now, sorted(names), sorted(types)) as session:
            for seg in refresh_order(segments):
                entered, exited = session.apply(seg.segment_id, session.run(_realtime_sql(seg)), "event")
                changes.append((seg.segment_id, entered, exited))
                moved.update(entered)
                moved.update(exited)
        for segment_id, entered, exited in changes:  # after the commit: subscribers see stored membership
            self._publish(segment_id, entered, exited, now, "event")
        return moved

    def _publish(self, segment_id: str, entered: list[str], exited: list[str], now: Any, cause: str) -> None:
        at = now.isoformat()
        for pid in entered:
            self.engine.bus.publish("segment.entered", {"segment_id": segment_id, "profile_id": pid, "at": at, "cause": cause})
        for pid in exited:
            self.engine.bus.publish("segment.exited", {"segment_id": segment_id, "profile_id": pid, "at": at, "cause": cause})

    # -- computed traits: RFM and lifecycle ----------------------------------------------------------
    def compute(self) -> dict[str, Any]:
        """RFM scores and segments, and lifecycle stages, for every profile, as
        computed traits (on profiles, usable in rules as ``computed:``); stage and
        segment changes are kept as transitions with their time."""
        from .lifecycle import lifecycle_table
        from .rfm import RFM_KEYS, rfm_table

        store, now = self.engine.store, self.engine.clock.now()
        started = time.perf_counter()
        rfm = store.run(rfm_table(self.engine.config.rfm, now))
        changed = set(store.write_computed(list(RFM_KEYS), rfm, now, history_keys=("rfm_segment",)))
        stages = store.run(lifecycle_table(self.engine.config.lifecycle, now))
        changed |= set(store.write_computed(["lifecycle_stage"], stages, now, history_keys=("lifecycle_stage",)))
        if changed:
            self.engine._sync_online(sorted(changed), [], None)
        clusters = None
        if (self.engine.config.state_dir / "models" / "clusters.joblib").exists():
            clusters = self.assign_clusters()  # new profiles join the existing clusters
        return {"at": now.isoformat(), "customers_scored": rfm.num_rows, "profiles_staged": stages.num_rows,
                "clusters": clusters,
                "changed_profiles": len(changed), "seconds": round(time.perf_counter() - started, 3),
                "rfm_segments": store.computed_distribution("rfm_segment"),
                "lifecycle_stages": store.computed_distribution("lifecycle_stage")}

    def cluster(self, method: str = "kmeans", n_clusters: int | str = "auto", pca: float | int | None = None,
                features: tuple[str, ...] | None = None, stability_boots: int = 5,
                population: str = "customers") -> dict[str, Any]:
        """Fit behavioural clusters; every profile with enough events gets ``computed.cluster``."""
        from .clusters_service import ClusterJobs

        return ClusterJobs(self.engine).fit(method, n_clusters, pca, features, stability_boots, population)

    def assign_clusters(self) -> dict[str, Any]:
        from .clusters_service import ClusterJobs

        return ClusterJobs(self.engine).assign()

    def transitions(self, profile: str, key: str | None = None) -> list[dict[str, Any]]:
        pid = self.engine.resolve(profile) or profile
        return self.engine.store.computed_history(pid, key)

    # -- reading -------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        stored = {r["segment_id"]: r for r in self.engine.store.stored_segments()}
        out = []
        for s in self.definitions():
            row = stored.get(s.segment_id, {})
            out.append({**s.as_dict(), "size": row.get("size", 0), "refreshed_at": row.get("refreshed_at")})
        return out

    def show(self, segment_id: str) -> dict[str, Any]:
        seg = self._get(segment_id)
        row = next((r for r in self.engine.store.stored_segments() if r["segment_id"] == segment_id), {})
        return {**seg.as_dict(), "size": row.get("size", 0), "refreshed_at": row.get("refreshed_at"),
                "sizes": self.engine.store.segment_sizes(segment_id)}

    def members(self, segment_id: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        self._get(segment_id)
        return self.engine.store.segment_members(segment_id, limit, offset)

    def history(self, profile: str | None = None, segment_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        pid = (self.engine.resolve(profile) or profile) if profile else None
        return self.engine.store.membership_history(pid, segment_id, limit)

    def export(self, segment_id: str, path: str, fmt: str | None = None) -> dict[str, Any]:
        self._get(segment_id)
        fmt = fmt or ("parquet" if str(path).endswith(".parquet") else "csv")
        n = self.engine.store.export_members(segment_id, path, fmt)
        return {"segment_id": segment_id, "path": str(path), "format": fmt, "members": n}


_PARSED: dict[tuple, SegmentDef | None] = {}

# Realtime SQL compiled once per rule: the time is read from a table, so the
# query text does not change from one batch to the next.
_REALTIME_SQL: dict[tuple[str, str], str] = {}


def _realtime_sql(seg: SegmentDef) -> str:
    import ibis
    import orjson

    key = (seg.segment_id, orjson.dumps(seg.raw_rule, option=orjson.OPT_SORT_KEYS).decode())
    if key not in _REALTIME_SQL:
        _REALTIME_SQL[key] = str(ibis.to_sql(members_expr(seg.rule, clock_now(), REALTIME), dialect="duckdb"))
    return _REALTIME_SQL[key]

