"""RFM: recency, frequency and monetary value per customer, scored 1-5 by
quintile, and the customary named segments. Ibis over the store's events.

Scores use the cumulative distribution, not ``ntile``: customers with the same
value (every one-order customer, say) get the same score, where ``ntile``
would split them arbitrarily between two.
"""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

from ..tables import PROFILE_EVENTS
from .config import DEFAULT_RFM_SEGMENTS, RfmConfig

__all__ = ["DEFAULT_RFM_SEGMENTS", "RFM_KEYS", "RfmConfig", "rfm_table"]

RFM_KEYS = ("rfm_recency_days", "rfm_frequency", "rfm_monetary", "rfm_r", "rfm_f", "rfm_m", "rfm_score", "rfm_segment")


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

