"""What a profile's aggregates are, and how two of them combine.

One rule per column (``COMBINE``) serves both places where aggregates meet: a
batch's aggregates folded into the stored row (an upsert), and the rows of
profiles merged into their survivor (a group-by). Adapters render the rule
for their engine; the domain states it once.

The batch's aggregates are an Ibis expression over the batch's stored events
(``_stored``), the stored profiles and a one-row table holding the
batch's time, so it is built once per configuration and compiled once per
store dialect. The combine rules are plain data; Ibis is imported only when an
expression is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import ibis.expr.types as ir

How = Literal["min", "max", "sum", "newest", "latest"]


@dataclass(frozen=True)
class Combine:
    """How a stored value and a new one become one.

    min / max / sum: as the words say (a missing side is ignored).
    newest: the value whose ``at`` column is the most recent (ties: the new one).
    latest: the new one replaces the stored one; merged rows keep the greatest.
    """

    how: How
    at: str | None = None


# Column order is the profiles table's order.
COMBINE: dict[str, Combine] = {
    "profile_id": Combine("min"),   # the key; listed for the column order
    "created_at": Combine("min"),
    "first_seen": Combine("min"),
    "last_seen": Combine("max"),
    "event_count": Combine("sum"),
    "session_count": Combine("sum"),
    "page_count": Combine("sum"),
    "order_count": Combine("sum"),
    "revenue": Combine("sum"),
    "last_device": Combine("newest", at="last_device_at"),
    "last_device_at": Combine("max"),
    "last_channel": Combine("newest", at="last_channel_at"),
    "last_channel_at": Combine("max"),
    "updated_at": Combine("latest"),
}
PROFILE_KEY = "profile_id"
PROFILE_COLUMNS = tuple(COMBINE)

def _tables() -> dict[str, Any]:
    """The relations the expressions read (built on use: importing this module
    must not import Ibis, so a store opens without it)."""
    import ibis

    from ..tables import TS

    return {
        # The batch's new events, attributed to their profiles (the columns the rules read).
        "events": ibis.table({
            "seq": "int64", "profile_id": "string", "timestamp": TS, "type": "string", "event": "string",
            "revenue_reporting": "float64", "device": "string", "channel": "string",
        }, name="_stored"),
        "stored": ibis.table({"profile_id": "string", "last_seen": TS}, name="profiles"),
        "clock": ibis.table({"now": TS}, name="_batch_clock"),
        "merges": ibis.table({"from_profile": "string", "into_profile": "string"}, name="_merges"),
        "profiles": ibis.table({
            "profile_id": "string", "created_at": TS, "first_seen": TS, "last_seen": TS, "event_count": "int64",
            "session_count": "int64", "page_count": "int64", "order_count": "int64", "revenue": "float64",
            "last_device": "string", "last_device_at": TS, "last_channel": "string", "last_channel_at": TS,
            "updated_at": TS,
        }, name="profiles"),
    }


def batch_aggregates(order_event: str, session_timeout_minutes: int) -> "ir.Table":
    """One row per profile the batch touches, shaped like a profile row.

    A session starts at an event more than the timeout after the profile's
    previous one (in this batch, or the stored last event for its first one in
    the batch). Orders are the configured order event; revenue counts only
    their amounts in the reporting currency (NULL amounts add nothing)."""
    import ibis

    t = _tables()
    e, p, clock = t["events"], t["stored"], t["clock"]
    gap = ibis.interval(minutes=int(session_timeout_minutes))
    joined = e.left_join(p, e.profile_id == p.profile_id).select(
        e.seq, e.profile_id, e.timestamp, e.type, e.event, e.revenue_reporting, e.device, e.channel,
        stored_last_seen=p.last_seen)
    prev = joined.timestamp.lag().over(ibis.window(group_by=joined.profile_id,
                                                   order_by=[joined.timestamp, joined.seq]))
    ordered = joined.mutate(prev_ts=prev)
    starts = ((ordered.prev_ts.isnull() & (ordered.stored_last_seen.isnull()
                                           | (ordered.timestamp > ordered.stored_last_seen + gap)))
              | (ordered.timestamp > ordered.prev_ts + gap))
    is_order = (ordered.type == "track") & (ordered.event == order_event)
    agg = ordered.group_by("profile_id").aggregate(
        first_seen=ordered.timestamp.min(),
        last_seen=ordered.timestamp.max(),
        event_count=ordered.count(),
        session_count=ordered.count(where=starts),
        page_count=ordered.count(where=ordered.type.isin(["page", "screen"])),
        order_count=ordered.count(where=is_order),
        revenue=ordered.revenue_reporting.sum(where=is_order).fill_null(0.0),
        last_device=ordered.device.argmax(ordered.timestamp, where=ordered.device.notnull()),
        last_device_at=ordered.timestamp.max(where=ordered.device.notnull()),
        last_channel=ordered.channel.argmax(ordered.timestamp, where=ordered.channel.notnull()),
        last_channel_at=ordered.timestamp.max(where=ordered.channel.notnull()),
    )
    withclock = agg.cross_join(clock)
    return withclock.select(
        profile_id=withclock.profile_id, created_at=withclock.now,
        **{c: withclock[c] for c in PROFILE_COLUMNS if c not in ("profile_id", "created_at", "updated_at")},
        updated_at=withclock.now)


def folded_profiles() -> "ir.Table":
    """The survivors of this batch's merges, each folded from itself and the
    profiles merged into it, column by column by ``COMBINE``."""
    t = _tables()
    p, m = t["profiles"], t["merges"]
    groups = m.select(pid=m.from_profile, survivor=m.into_profile).union(
        m.select(pid=m.into_profile, survivor=m.into_profile)).distinct()
    rows = p.join(groups, p.profile_id == groups.pid)
    metrics = {}
    for column, rule in COMBINE.items():
        if column == PROFILE_KEY:
            continue
        value = rows[column]
        if rule.how == "min":
            metrics[column] = value.min()
        elif rule.how in ("max", "latest"):
            metrics[column] = value.max()
        elif rule.how == "sum":
            metrics[column] = value.sum()
        else:
            at = rows[rule.at or ""]
            metrics[column] = value.argmax(at, where=at.notnull() & value.notnull())
    folded = rows.group_by(profile_id=rows.survivor).aggregate(**metrics)
    return folded.select(*PROFILE_COLUMNS)
