"""Probabilistic identity resolution on a project. Reached as ``engine.resolution``.

``run`` builds one record per profile from its stored (standardized, observed)
traits, blanks values that cannot be evidence, scores candidate pairs with a
Fellegi-Sunter model trained without labels (Splink), merges pairs at or above
``match_probability`` -- unless a guard stops it -- and queues pairs between
``review_probability`` and ``match_probability`` for a person. Every merge is
explained (each comparison's level and match weight), audited, and can be undone.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

import orjson
import pyarrow as pa

from ...errors import NotFound, ValidationFailed
from ...quality.apply import standardize_values
from ...ports import PROFILES_CHANGED, ProfilesChanged
from .guards import Blocked, blank_unusable, components
from .model import train_and_predict

if TYPE_CHECKING:
    from ...clock import Clock
    from ...config import Config
    from ...ports import EventBus, PipelineSettings, ProfileMerges, ResolutionLedger

Progress = Callable[[str], None]
Facts = dict[str, tuple[datetime, bool]]   # profile id -> (created at, has a userId): ResolutionLedger.profile_facts


class ResolutionService:
    def __init__(self, config: "Config", clock: "Clock", ledger: "ResolutionLedger", merges: "ProfileMerges",
                 settings: "PipelineSettings", bus: "EventBus", resolve: Callable[[str], "str | None"]):
        self.config, self.clock, self.ledger, self.merges = config, clock, ledger, merges
        self.settings, self.bus, self.resolve = settings, bus, resolve
        self.cfg = config.identity.resolution

    def _changed(self, touched: list[str], removed: list[str]) -> None:
        self.bus.publish(PROFILES_CHANGED, ProfilesChanged(tuple(touched), tuple(removed), origin="resolution"))

    def records(self) -> pa.Table:
        """Person records: one per distinct set of values a profile was identified
        with (a CRM row, a signup form), standardized. Comparing records rather
        than profiles keeps every variant as evidence, and the records a profile
        already joins deterministically teach the model what true matches look like."""
        standardized = {f.name for f in self.config.quality.fields if f.standardize}
        return self.ledger.person_records(self.cfg.field_names, standardized)

    # -- the batch job ---------------------------------------------------------------
    def run(self, actor: str = "resolver", progress: Progress | None = None) -> dict[str, Any]:
        say = progress or (lambda _msg: None)
        store, now, cfg = self.ledger, self.clock.now(), self.cfg
        started = time.perf_counter()
        run_id = store.start_resolution_run(now)
        say("reading person records")
        records = self.records()
        blocked = Blocked()
        records = blank_unusable(records, cfg, self.config.identity.junk_values, blocked)
        say(f"training and scoring {records.num_rows:,} records")
        scored = train_and_predict(records, cfg, cfg.review_probability, store.splink_api(), label="profile_id")
        say(f"classifying {scored.pairs.num_rows:,} candidate record pairs")
        facts = store.profile_facts()
        decided = store.human_decisions()
        rows = self._classify(_profile_pairs(scored.pairs), facts, decided, blocked)
        merges = self._merges(rows, facts)
        say(f"merging {len(merges):,} profiles")
        store.record_pairs(run_id, _pairs_table(rows))
        merged = self.merges.merge_profiles(merges, actor, now, self.settings)
        if merges:
            self._changed(sorted({m[1] for m in merges}), [m[0] for m in merges])
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        summary = {
            "run_id": run_id, "records": records.num_rows, "pairs_scored": scored.pairs.num_rows,
            "training": scored.training,
            "merged_profiles": merged, "pairs": counts, "review": counts.get("review", 0),
            "blocked": blocked.as_dict(), "seconds": round(time.perf_counter() - started, 2),
            "thresholds": {"match_probability": cfg.match_probability, "review_probability": cfg.review_probability},
        }
        store.finish_resolution_run(run_id, self.clock.now(), summary, scored.model)
        return summary

    def _classify(self, pairs: list[dict[str, Any]], facts: Facts, decided: dict[tuple[str, str], str],
                  blocked: Blocked) -> list[dict[str, Any]]:
        cfg = self.cfg
        rows: list[dict[str, Any]] = []
        for p in pairs:
            left, right, explanation = p["left"], p["right"], p["explanation"]
            if (left, right) in decided:
                continue
            status, reason = "review", None
            if p["match_probability"] >= cfg.match_probability:
                status = "merged"
                if not cfg.merge_known_users and facts.get(left, (None, False))[1] and facts.get(right, (None, False))[1]:
                    status, reason = "review", "both profiles have a userId (identity.resolution.merge_known_users is false)"
            rows.append({"left_profile": left, "right_profile": right, "match_probability": p["match_probability"],
                         "match_weight": p["match_weight"], "explanation": explanation, "status": status, "reason": reason})
        auto = [r for r in rows if r["status"] == "merged"]
        for group in components([(r["left_profile"], r["right_profile"]) for r in auto]):
            if len(group) > cfg.max_cluster_size:
                members = set(group)
                reason = f"cluster of {len(group)} profiles exceeds max_cluster_size={cfg.max_cluster_size}"
                for r in auto:
                    if r["left_profile"] in members:
                        r["status"], r["reason"] = "blocked", reason
                blocked.clusters.append({"size": len(group), "profiles": group[:20], "reason": reason})
        return rows

    @staticmethod
    def _merges(rows: list[dict[str, Any]], facts: Facts) -> list[tuple[str, str, float | None]]:
        """Each merged cluster folds into one survivor (see ``_survivor_key``).
        Typed as ProfileMerges.merge_profiles takes them (there a merge may have no probability)."""
        auto = [r for r in rows if r["status"] == "merged"]
        best: dict[str, float] = {}
        for r in auto:
            for side in ("left_profile", "right_profile"):
                best[r[side]] = max(best.get(r[side], 0.0), r["match_probability"])
        out: list[tuple[str, str, float | None]] = []
        for group in components([(r["left_profile"], r["right_profile"]) for r in auto]):
            survivor = min(group, key=lambda pid: _survivor_key(pid, facts))
            out += [(pid, survivor, best[pid]) for pid in group if pid != survivor]
        return out

    # -- people deciding -------------------------------------------------------------
    def review(self, status: str = "review", limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        if status not in ("review", "merged", "accepted", "rejected", "blocked", "undone", "all"):
            raise ValidationFailed(f"unknown status {status!r}; use review, merged, accepted, rejected, blocked, undone or all")
        return self.ledger.match_pairs(None if status == "all" else status, limit, offset)

    def _pair(self, left: str, right: str) -> dict[str, Any]:
        a, b = sorted((left, right))
        for item in self.ledger.match_pairs(None, limit=10, profile=a):
            if (item["left_profile"], item["right_profile"]) == (a, b):
                return item
        raise NotFound(f"no scored pair {a} / {b}; see `personable resolve review`")

    def decide(self, left: str, right: str, accept: bool, actor: str = "reviewer") -> dict[str, Any]:
        """Accept (merge now) or reject (never merge automatically) a pair."""
        store, merges, now = self.ledger, self.merges, self.clock.now()
        pair = self._pair(left, right)
        a, b = merges.current_profile(pair["left_profile"]), merges.current_profile(pair["right_profile"])
        if accept:
            if a != b:
                facts = store.profile_facts()
                survivor = min((a, b), key=lambda pid: _survivor_key(pid, facts))
                other = b if survivor == a else a
                merges.merge_profiles([(other, survivor, pair["match_probability"])], actor, now, self.settings)
                self._changed([survivor], [other])
            store.set_pair_status(pair["left_profile"], pair["right_profile"], "accepted", actor, now)
        else:
            store.set_pair_status(pair["left_profile"], pair["right_profile"], "rejected", actor, now)
            merges.add_audit("reject", actor, pair["left_profile"], pair["right_profile"], pair["match_probability"], now)
        return {**self._pair(left, right), "profile": merges.current_profile(a)}

    def explain(self, identifier: str) -> dict[str, Any]:
        """Why a profile is what it is: each probabilistic merge into it, with the
        comparisons (level, match weight, both values) behind it."""
        pid = self.resolve(identifier) or identifier
        store = self.ledger
        history = self.merges.audit(pid)
        merged = [h for h in history if h["action"] == "merge" and h["into_profile"] == pid]
        links = [p for p in store.match_pairs(None, limit=200, profile=pid) if p["status"] in ("merged", "accepted")]
        pending = [p for p in store.match_pairs("review", limit=50, profile=pid)]
        return {"profile_id": pid, "merges": merged, "links": links, "pending_review": pending, "audit": history}

    def undo(self, merged_profile: str, actor: str = "reviewer") -> dict[str, Any]:
        """Split a profile merged by resolution back out, and keep it apart."""
        store, now = self.ledger, self.clock.now()
        merge = self.merges.last_merge(merged_profile)
        if merge is None:
            raise NotFound(f"{merged_profile} was not merged by identity resolution; "
                           "pass the id of the merged-away profile (see `personable resolve explain`)")
        if merge["undone"]:
            raise ValidationFailed(f"the merge of {merged_profile} into {merge['into_profile']} is already undone")
        qc = self.config.quality
        fields = [(f.name, f.region_from) for f in qc.fields]

        def standardize(values: list[tuple[str, str, str | None]]
                        ) -> list[tuple[str, str, str | None, str | None, str | None, str, bool]]:
            return standardize_values(values, qc, self.config.identity.default_region)

        rebuilt = self.merges.unmerge(merge, actor, now, self.settings, standardize, fields)
        for p in store.match_pairs(None, limit=1000, profile=merged_profile):
            if p["status"] in ("merged", "accepted"):
                store.set_pair_status(p["left_profile"], p["right_profile"], "undone", actor, now)
        self._changed(rebuilt, [])
        return {"undone": merge["id"], "from_profile": merged_profile, "into_profile": merge["into_profile"],
                "rebuilt": rebuilt}


def _survivor_key(pid: str, facts: Facts) -> tuple[bool, datetime, str]:
    """A known user's profile survives, then the oldest, then the smallest id:
    the id an application already holds stays valid."""
    created, has_user = facts[pid]
    return (not has_user, created, pid)


def _profile_pairs(pairs: pa.Table) -> list[dict[str, Any]]:
    """Record pairs -> profile pairs: pairs inside one profile need nothing; of
    several record pairs between two profiles, the most likely one speaks."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for p in pairs.to_pylist():
        a, b = p["profile_id_l"], p["profile_id_r"]
        if a == b:
            continue
        swap = a > b
        key = (b, a) if swap else (a, b)
        if key in best and best[key]["match_probability"] >= p["match_probability"]:
            continue
        explanation = p["explanation"]
        if swap:  # one key per pair, whatever order the scorer used
            explanation = orjson.dumps([{**e, "left": e["right"], "right": e["left"]}
                                        for e in orjson.loads(explanation)]).decode()
        best[key] = {"left": key[0], "right": key[1], "match_probability": p["match_probability"],
                     "match_weight": p["match_weight"], "explanation": explanation}
    return list(best.values())


def _pairs_table(rows: list[dict[str, Any]]) -> pa.Table:
    cols = ("left_profile", "right_profile", "match_probability", "match_weight", "explanation", "status", "reason")
    types = (pa.string(), pa.string(), pa.float64(), pa.float64(), pa.string(), pa.string(), pa.string())
    return pa.table({c: pa.array([r[c] for r in rows], t) for c, t in zip(cols, types)})
