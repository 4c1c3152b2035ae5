"""Lifecycle stages from order history: prospect, new, active, loyal, at_risk,
lapsed, reactivated. Ibis over the store's events; thresholds configurable.

    lifecycle:
      new_days: 30          # first order at most this long ago
      active_days: 90       # last order at most this long ago
      lapsed_days: 180      # last order longer ago than this: lapsed (between: at_risk)
      loyal_orders: 3       # active with at least this many orders: loyal
      reactivated_days: 30  # ordered this recently after a gap longer than lapsed_days

The first stage that applies wins, in the order reactivated, new, loyal,
active, at_risk, lapsed; a profile without orders is a prospect.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from ..tables import PROFILE_EVENTS, PROFILES
from .config import LifecycleConfig

__all__ = ["STAGES", "LifecycleConfig", "lifecycle_table"]

STAGES = ("prospect", "new", "active", "loyal", "at_risk", "lapsed", "reactivated")


def lifecycle_table(cfg: LifecycleConfig, now: datetime) -> ir.Table:
    """One row per profile: its lifecycle stage now."""
    e = PROFILE_EVENTS
    orders = e.filter((e.type == "track") & (e.event == cfg.order_event) & (e.timestamp <= ibis.literal(now)))
    # The gap before each order, to recognize a comeback.
    orders = orders.mutate(previous=orders.timestamp.lag().over(group_by="profile_id", order_by="timestamp"))
    per = orders.group_by("profile_id").aggregate(
        first_order=orders.timestamp.min(), last_order=orders.timestamp.max(), orders=orders.count(),
        last_gap_start=orders.previous.argmax(orders.timestamp))
    p = PROFILES
    j = p.left_join(per, p.profile_id == per.profile_id).select(p.profile_id, per.first_order, per.last_order,
                                                               per.orders, per.last_gap_start)

    def ago(days: int) -> ir.TimestampScalar:
        return ibis.literal(now - timedelta(days=days))

    comeback = (j.last_order >= ago(cfg.reactivated_days)) & j.last_gap_start.notnull() & (
        (j.last_order.epoch_seconds() - j.last_gap_start.epoch_seconds()) > cfg.lapsed_days * 86400)
    stage = ibis.cases(
        (j.last_order.isnull(), "prospect"),
        (comeback, "reactivated"),
        (j.first_order >= ago(cfg.new_days), "new"),
        ((j.last_order >= ago(cfg.active_days)) & (j.orders >= cfg.loyal_orders), "loyal"),
        (j.last_order >= ago(cfg.active_days), "active"),
        (j.last_order >= ago(cfg.lapsed_days), "at_risk"),
        else_="lapsed")
    return j.select("profile_id", lifecycle_stage=stage)
