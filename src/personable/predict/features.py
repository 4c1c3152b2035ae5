"""Point-in-time customer features: everything as of a cutoff, from events
strictly before it, so that nothing from after the cutoff leaks into a model
trained on what happened after it. Ibis over the store's events.

Profile aggregates in the ``profiles`` table are *not* used here: they include
every event up to now. Each feature is recomputed from the events themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from ..events.spec import ORDER_COMPLETED
from ..tables import IDENTITIES, PROFILE_EVENTS as EVENTS

ORDER = ORDER_COMPLETED   # the default; services pass the configured events.order_event
FEATURES = (
    "recency_days", "tenure_days", "events_total", "events_7d", "events_30d", "events_90d",
    "pages_30d", "views_30d", "adds_30d", "orders_total", "orders_30d", "orders_90d",
    "monetary_total", "monetary_90d", "avg_order_value", "days_since_order", "add_rate",
    "email_opens_30d", "email_open_rate", "active_days_30d",
)


@dataclass(frozen=True)
class Split:
    """One time-based split: features as of ``cutoff``, labels from the
    ``horizon_days`` after it."""

    name: str
    cutoff: datetime
    horizon_days: int

    @property
    def label_end(self) -> datetime:
        return self.cutoff + timedelta(days=self.horizon_days)


def time_splits(last_cutoff: datetime, horizon_days: int, n: int = 3) -> list[Split]:
    """Train / validation / test cutoffs, each a horizon apart and ending at
    ``last_cutoff`` (test): later data is only ever used to judge earlier models."""
    names = ["train", "validation", "test"] if n == 3 else [f"split{i}" for i in range(n)]
    return [Split(names[i], last_cutoff - timedelta(days=horizon_days * (n - 1 - i)), horizon_days) for i in range(n)]


def customer_features(cutoff: datetime, customers_only: bool = True, order_event: str = ORDER) -> ir.Table:
    """One row per profile active before ``cutoff``: the features in ``FEATURES``
    (orders: ``order_event``, the configured ``events.order_event``)."""
    e = EVENTS
    e = e.filter(e.timestamp < ibis.literal(cutoff))
    if customers_only:
        e = e.filter(e.profile_id.isin(IDENTITIES.filter(IDENTITIES.kind == "user_id").profile_id))
    now = ibis.literal(cutoff)

    def within(days: int) -> ir.BooleanValue:
        return e.timestamp >= ibis.literal(cutoff - timedelta(days=days))

    track = e.type == "track"
    order = track & (e.event == order_event)
    per = e.group_by("profile_id").aggregate(
        first=e.timestamp.min(), last=e.timestamp.max(),
        events_total=e.count(), events_7d=within(7).sum(), events_30d=within(30).sum(), events_90d=within(90).sum(),
        pages_30d=((e.type == "page") & within(30)).sum(),
        views_30d=(track & (e.event == "Product Viewed") & within(30)).sum(),
        views_total=(track & (e.event == "Product Viewed")).sum(),
        adds_30d=(track & (e.event == "Product Added") & within(30)).sum(),
        adds_total=(track & (e.event == "Product Added")).sum(),
        orders_total=order.sum(), orders_30d=(order & within(30)).sum(), orders_90d=(order & within(90)).sum(),
        monetary_total=e.revenue_reporting.sum(where=order),
        monetary_90d=e.revenue_reporting.sum(where=order & within(90)),
        last_order=e.timestamp.max(where=order),
        email_opens_30d=(track & (e.event == "Email Opened") & within(30)).sum(),
        email_opens=(track & (e.event == "Email Opened")).sum(),
        email_sends=(track & (e.event == "Email Sent")).sum(),
        active_days_30d=e.timestamp.date().nunique(where=within(30)),
    )

    def days(ts: ir.TimestampValue) -> ir.FloatingValue:
        return (now.epoch_seconds() - ts.epoch_seconds()) / 86400.0

    def ratio(a: ir.NumericValue, b: ir.NumericValue) -> ir.FloatingValue:
        return ibis.cases((b > 0, a.cast("float64") / b.cast("float64")), else_=ibis.null("float64"))

    return per.select(
        "profile_id",
        recency_days=days(per["last"]), tenure_days=days(per["first"]),
        events_total=per.events_total, events_7d=per.events_7d, events_30d=per.events_30d,
        events_90d=per.events_90d, pages_30d=per.pages_30d, views_30d=per.views_30d, adds_30d=per.adds_30d,
        orders_total=per.orders_total, orders_30d=per.orders_30d, orders_90d=per.orders_90d,
        monetary_total=per.monetary_total.fill_null(0), monetary_90d=per.monetary_90d.fill_null(0),
        avg_order_value=ratio(per.monetary_total, per.orders_total),
        days_since_order=days(per.last_order),
        add_rate=ratio(per.adds_total, per.views_total),
        email_opens_30d=per.email_opens_30d, email_open_rate=ratio(per.email_opens, per.email_sends),
        active_days_30d=per.active_days_30d,
    )


def activity_after(cutoff: datetime, horizon_days: int) -> ir.Table:
    """Profiles with any event in (cutoff, cutoff + horizon]: the observed
    "did not churn" label for a churn model trained as of ``cutoff``."""
    e = EVENTS
    end = cutoff + timedelta(days=horizon_days)
    # What the customer did: identify calls and emails we sent are not their activity.
    active = e.filter((e.timestamp >= ibis.literal(cutoff)) & (e.timestamp < ibis.literal(end))
                      & (e.type != "identify") & (e.event.fill_null("") != "Email Sent"))
    return active.group_by("profile_id").aggregate(events_after=active.count())


def order_summary(now: datetime, order_event: str = ORDER) -> ir.Table:
    """Per customer with an order before ``now``: the number of orders, the first
    and last order times, the revenue of all orders and of the first one -- the
    inputs of BG/NBD (frequency, recency, age) and Gamma-Gamma (repeat spend)."""
    o = EVENTS.filter((EVENTS.type == "track") & (EVENTS.event == order_event) & (EVENTS.timestamp < ibis.literal(now)))
    return o.group_by("profile_id").aggregate(
        orders=o.count(), first_order=o.timestamp.min(), last_order=o.timestamp.max(),
        revenue=o.revenue_reporting.sum(), first_order_value=o.revenue_reporting.argmin(o.timestamp),
    ).order_by("profile_id")
