"""RFM: recency, frequency and monetary value per customer, scored 1-5 by
quintile, and the customary named segments. Ibis over the store's events.

Scores use the cumulative distribution, not ``ntile``: customers with the same
value (every one-order customer, say) get the same score, where ``ntile``
would split them arbitrarily between two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from ..errors import ErrorList
from ..tables import PROFILE_EVENTS

# (name, R range, FM range) -- FM is the rounded mean of F and M. The first
# matching row names the customer; the default table covers the 5 x 5 grid.
DEFAULT_RFM_SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (5, 5), (4, 5)),
    ("Champions", (4, 4), (5, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential Loyalist", (4, 5), (2, 3)),
    ("New", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About to Sleep", (3, 3), (1, 2)),
    ("Can't Lose Them", (1, 2), (5, 5)),
    ("At Risk", (1, 2), (3, 4)),
    ("Hibernating", (2, 2), (1, 2)),
    ("Lost", (1, 1), (1, 2)),
)
RFM_KEYS = ("rfm_recency_days", "rfm_frequency", "rfm_monetary", "rfm_r", "rfm_f", "rfm_m", "rfm_score", "rfm_segment")


@dataclass(frozen=True)
class RfmConfig:
    order_event: str = "Order Completed"
    segments: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = DEFAULT_RFM_SEGMENTS


def parse_rfm(raw: Any, errors: ErrorList) -> RfmConfig:
    if raw is None:
        return RfmConfig()
    if not isinstance(raw, dict):
        errors.add("rfm", "must be a mapping (order_event, segments)")
        return RfmConfig()
    event = raw.get("order_event", "Order Completed")
    if not isinstance(event, str) or not event:
        errors.add("rfm.order_event", "must be an event name")
        event = "Order Completed"
    segments = DEFAULT_RFM_SEGMENTS
    if "segments" in raw:
        parsed = []
        if not isinstance(raw["segments"], list) or not raw["segments"]:
            errors.add("rfm.segments", "must be a list of {name, r: [low, high], fm: [low, high]}")
        else:
            for i, item in enumerate(raw["segments"]):
                path = f"rfm.segments[{i}]"
                ok = isinstance(item, dict) and isinstance(item.get("name"), str)
                ranges = []
                for key in ("r", "fm"):
                    rng = item.get(key) if isinstance(item, dict) else None
                    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) and 1 <= v <= 5 for v in rng)
                            and rng[0] <= rng[1]):
                        errors.add(f"{path}.{key}", "must be [low, high] with scores from 1 to 5")
                        ok = False
                    else:
                        ranges.append((rng[0], rng[1]))
                if not (isinstance(item, dict) and isinstance(item.get("name"), str)):
                    errors.add(f"{path}.name", "is required")
                if ok:
                    parsed.append((item["name"], ranges[0], ranges[1]))
            segments = tuple(parsed) or DEFAULT_RFM_SEGMENTS
    return RfmConfig(order_event=event, segments=segments)


def _score(col: ir.Value, descending: bool = False) -> ir.IntegerValue:
    """1-5 by quintile of the cumulative distribution (ties share a score)."""
    order = col.desc() if descending else col.asc()
    return (ibis.cume_dist().over(order_by=order) * 5).ceil().cast("int64").clip(lower=1, upper=5)


def rfm_table(cfg: RfmConfig, now: datetime) -> ir.Table:
    """One row per customer with at least one order: RFM values, scores, segment."""
    e = PROFILE_EVENTS
    orders = e.filter((e.type == "track") & (e.event == cfg.order_event))
    per = orders.group_by("profile_id").aggregate(
        last_order=orders.timestamp.max(), rfm_frequency=orders.count(),
        rfm_monetary=orders.revenue_reporting.fill_null(0).sum())
    recency = (ibis.literal(now).epoch_seconds() - per.last_order.epoch_seconds()) / 86400.0
    per = per.mutate(rfm_recency_days=recency.round(1))
    per = per.mutate(rfm_r=_score(per.rfm_recency_days, descending=True), rfm_f=_score(per.rfm_frequency),
                     rfm_m=_score(per.rfm_monetary))
    fm = ((per.rfm_f + per.rfm_m + 1) / 2).floor().cast("int64")
    branches = [((per.rfm_r.between(r[0], r[1])) & (fm.between(f[0], f[1])), ibis.literal(name))
                for name, r, f in cfg.segments]
    per = per.mutate(
        rfm_score=per.rfm_r.cast("string") + per.rfm_f.cast("string") + per.rfm_m.cast("string"),
        rfm_segment=ibis.cases(*branches, else_=ibis.null("string")),
        rfm_monetary=per.rfm_monetary.round(2))
    return per.select("profile_id", *RFM_KEYS)

