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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from ..errors import ErrorList
from ..tables import PROFILE_EVENTS, PROFILES

STAGES = ("prospect", "new", "active", "loyal", "at_risk", "lapsed", "reactivated")


@dataclass(frozen=True)
class LifecycleConfig:
    order_event: str = "Order Completed"
    new_days: int = 30
    active_days: int = 90
    lapsed_days: int = 180
    loyal_orders: int = 3
    reactivated_days: int = 30


def parse_lifecycle(raw: Any, errors: ErrorList, order_event: str) -> LifecycleConfig:
    if raw is None:
        return LifecycleConfig(order_event=order_event)
    if not isinstance(raw, dict):
        errors.add("lifecycle", "must be a mapping of thresholds")
        return LifecycleConfig(order_event=order_event)
    values: dict[str, int] = {}
    for key in ("new_days", "active_days", "lapsed_days", "loyal_orders", "reactivated_days"):
        if key in raw:
            v = raw[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                errors.add(f"lifecycle.{key}", f"must be a whole number of at least 1, got {v!r}")
            else:
                values[key] = v
    unknown = set(raw) - {"new_days", "active_days", "lapsed_days", "loyal_orders", "reactivated_days"}
    if unknown:
        errors.add("lifecycle", f"unknown key(s) {', '.join(sorted(unknown))}")
    cfg = LifecycleConfig(order_event=order_event, **values)
    if cfg.active_days > cfg.lapsed_days:
        errors.add("lifecycle.active_days", "must not be above lapsed_days")
    return cfg


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
