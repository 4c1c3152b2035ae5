"""A person's data, as they may ask for it (GDPR Art. 15 and 20, CCPA's right
to know): one machine-readable bundle, plus their events as CSV.

The bundle holds:

- traits, each with its source and time;
- identities;
- consents, with their history;
- segments, with what each means and when the person entered and left;
- computed traits and model scores, with what each means;
- every processing that used the profile: the audit log's records about any
  of the person's ids, and the uses the consent policy refused.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any, Callable

import orjson

from ..errors import NotFound

if TYPE_CHECKING:
    from ..clock import Clock
    from ..ports import Analytics, ModelRegistry, ProfileReads
    from ..ports.consent import ConsentStore
    from ..segments.service import SegmentService
    from .audit import AuditLog

EVENT_FIELDS = ("message_id", "type", "event", "name", "timestamp", "received_at", "source", "user_id",
                "anonymous_id", "device", "channel", "context", "properties", "traits")

# What each computed trait means, in words a person can read.
MEANINGS = {
    "first_seen": "when we first saw you", "last_seen": "when we last saw you",
    "event_count": "how many interactions we recorded", "session_count": "how many visits",
    "page_count": "how many pages you viewed", "order_count": "how many orders you placed",
    "revenue": "what your orders came to", "last_device": "the device you used last",
    "last_channel": "how you reached us last",
    "rfm_segment": "a group by how recently, how often and how much you bought (RFM)",
    "r_score": "recency score (1-5)", "f_score": "frequency score (1-5)", "m_score": "monetary score (1-5)",
    "rfm_score": "the three RFM scores together", "lifecycle_stage": "where you are as a customer (new, active, ...)",
    "cluster": "a group of customers with similar habits",
    "churn_risk": "a model's estimate of the chance you stop buying (0-1)",
    "clv_12m": "a model's estimate of what you will spend in 12 months",
    "p_alive": "a model's estimate of the chance you are still a customer",
    "expected_purchases_90d": "a model's estimate of your purchases in 90 days",
    "next_order_value": "a model's estimate of your next order's value",
    "best_send_hour": "the hour you most often read our messages", "best_send_weekday": "the weekday you most often read",
}
MODEL_OF = {"churn_risk": "churn", "clv_12m": "clv", "p_alive": "clv", "expected_purchases_90d": "clv",
            "next_order_value": "next_purchase", "best_send_hour": "send_time", "best_send_weekday": "send_time"}


class PersonalDataExport:
    def __init__(self, clock: "Clock", analytics: "Analytics", online: "ProfileReads", consents: "ConsentStore",
                 segments: "SegmentService", audit: "AuditLog", registry: "ModelRegistry",
                 resolve: Callable[[str], str | None], policy_version: str):
        self.clock, self.analytics, self.online, self.consents = clock, analytics, online, consents
        self.segments, self.audit, self.registry, self.resolve = segments, audit, registry, resolve
        self.policy_version = policy_version

    def _doc(self, identifier: str) -> dict[str, Any]:
        pid = self.resolve(identifier)
        doc = self.online.profile(pid, 0) if pid else None
        if doc is None:
            raise NotFound(f"no profile for {identifier!r}")
        return doc

    def bundle(self, identifier: str) -> dict[str, Any]:
        doc = self._doc(identifier)
        pid = doc["profile_id"]
        defs = {s.segment_id: s for s in self.segments.definitions()}
        sources = doc.get("trait_sources") or {}
        computed = doc.get("computed") or {}
        versions = {v["name"]: v for v in self.registry.model_versions()}   # the latest of each, last
        ids = self._ids(doc)
        processing = [r for target in sorted(ids) for r in self.audit.query(target=target, limit=10_000)]
        processing.sort(key=lambda r: r["seq"])
        return {
            "exported_at": self.clock.now().isoformat(), "profile_id": pid, "policy_version": self.policy_version,
            "traits": [{"key": k, "value": v, **sources.get(k, {})} for k, v in sorted((doc.get("traits") or {}).items())],
            "identities": doc.get("identities") or [],
            "consents": doc.get("consents") or {},
            "consent_history": self.consents.consent_history(pid, 10_000),
            "segments": [{"segment_id": m["segment_id"], "entered_at": m.get("entered_at"),
                          "name": defs[m["segment_id"]].name if m["segment_id"] in defs else m["segment_id"],
                          "meaning": defs[m["segment_id"]].description or None if m["segment_id"] in defs else None,
                          "rule": defs[m["segment_id"]].raw_rule if m["segment_id"] in defs else None}
                         for m in doc.get("segments") or []],
            "segment_history": self.segments.history(pid, None, 10_000),
            "computed_traits": [{"key": k, "value": v, "meaning": MEANINGS.get(k),
                                 **({"model": MODEL_OF[k], "model_version": versions[MODEL_OF[k]]["version"]}
                                    if MODEL_OF.get(k) in versions else {})}
                                for k, v in sorted(computed.items())],
            "computed_history": self.segments.transitions(pid),
            "processing": processing,
            "refused_uses": self.consents.refusals_of([pid, *doc.get("merged_from", [])]),
            "merged_from": doc.get("merged_from") or [],
            "events": self._events(doc).num_rows,
        }

    @staticmethod
    def _ids(doc: dict[str, Any]) -> set[str]:
        """Every id an audit record may name the person by (emails and phones are kept hashed: not these)."""
        ids = {doc["profile_id"], *doc.get("merged_from", [])}
        for i in doc.get("identities") or []:
            if i["kind"] in ("user_id", "anonymous_id"):
                ids |= {i["value"], f"{i['kind']}:{i['value']}"}
        return ids

    def _events(self, doc: dict[str, Any]) -> Any:
        import ibis

        events = ibis.table({"profile_id": "string", "message_id": "string", "type": "string", "event": "string",
                             "name": "string", "timestamp": "timestamp('UTC')", "received_at": "timestamp('UTC')",
                             "source": "string", "user_id": "string", "anonymous_id": "string", "device": "string",
                             "channel": "string", "context": "json", "properties": "json", "traits": "json"},
                            name="events")
        owners = [doc["profile_id"], *doc.get("merged_from", [])]
        mine = events.filter(events.profile_id.isin(owners))
        return self.analytics.execute(mine.select(*EVENT_FIELDS).order_by(["timestamp", "message_id"]))

    def events_csv(self, identifier: str) -> str:
        table = self._events(self._doc(identifier))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(EVENT_FIELDS)
        for row in table.to_pylist():
            writer.writerow([_cell(row[f]) for f in EVENT_FIELDS])
        return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)
