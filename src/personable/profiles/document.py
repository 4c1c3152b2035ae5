"""The profile document: what the profile API returns and the online store keeps.

Keys: profile_id, created_at, updated_at, traits, trait_sources (observed_at and
source per trait), computed (first/last seen, event, session, page and order
counts, revenue, last device and channel), identities, consents (granted,
observed_at, source per purpose), merged_from (old profile ids that now
redirect here) and recent_events (newest first). Times are ISO 8601 UTC.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Iterable, Mapping

RECENT_EVENTS = 50  # kept per document; the API serves up to this many


# -- building the document from a store's rows ----------------------------------
# Stores that cannot build the document in one statement of their own (the
# embedded store does, in SQL) read the profile's rows and assemble it here.

AGGREGATES = ("event_count", "session_count", "page_count", "order_count")


def iso(ts: datetime | None) -> str | None:
    """A time as the document writes it: UTC, microseconds, ``Z``."""
    return None if ts is None else ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_document(profile: Mapping[str, Any], traits: Iterable[Mapping[str, Any]],
                   identities: Iterable[Mapping[str, Any]], consents: Iterable[Mapping[str, Any]],
                   computed: Iterable[tuple[str, Any]], segments: Iterable[tuple[str, datetime]],
                   merged_from: Iterable[str], recent: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One profile's document from its rows (JSON values already decoded)."""
    trait_rows = list(traits)
    revenue = profile["revenue"]
    facts: dict[str, Any] = {
        "first_seen": iso(profile["first_seen"]), "last_seen": iso(profile["last_seen"]),
        **{k: profile[k] for k in AGGREGATES},
        # never a non-finite number in a document (JSON has none; readers fail on it)
        "revenue": revenue if revenue is not None and math.isfinite(revenue) else None,
        "last_device": profile["last_device"], "last_channel": profile["last_channel"],
    }
    facts.update(dict(computed))
    return {
        "profile_id": profile["profile_id"],
        "created_at": iso(profile["created_at"]),
        "updated_at": iso(profile["updated_at"]),
        "traits": {t["key"]: t["value"] for t in trait_rows},
        "trait_sources": {t["key"]: {"observed_at": iso(t["observed_at"]), "source": t["source"],
                                     "origin": t["origin"], "observed": t["raw_value"]} for t in trait_rows},
        "computed": facts,
        "segments": [{"segment_id": s, "entered_at": iso(at)} for s, at in sorted(segments)],
        "identities": [{"kind": i["kind"], "value": i["value"], "first_seen": iso(i["first_seen"]),
                        "source": i["source"]} for i in identities],
        "consents": {c["purpose"]: {"granted": c["granted"], "observed_at": iso(c["observed_at"]),
                                    "source": c["source"]} for c in consents},
        "merged_from": sorted(merged_from),
        "recent_events": [{"messageId": e["message_id"], "type": e["type"], "event": e["event"], "name": e["name"],
                           "timestamp": iso(e["timestamp"]), "properties": e["properties"],
                           "userId": e["user_id"], "anonymousId": e["anonymous_id"]} for e in recent],
    }
