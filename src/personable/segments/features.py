"""The feature matrix for clustering: one row per profile, built from its events
as an Ibis expression (DuckDB now, Spark later).

Behaviour is described by ratios, not totals, so that a customer active for a
week and one active for two months with the same habits look alike:
engagement (events per session, product views per session, sessions per active
day), the funnel (cart adds per view, removals per add, checkouts per cart add,
orders per checkout), money (average viewed price, average order value, RFM),
taste (share of views in each category, and how concentrated they are), and
the device and channel mix.
"""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

from ..events.spec import ORDER_COMPLETED
from ..tables import IDENTITIES, PROFILE_EVENTS as EVENTS, PROFILES

CATEGORIES = ("electronics", "fashion", "home", "beauty", "sports", "books", "toys", "grocery")
DEVICES = ("mobile", "desktop", "tablet")
CHANNELS = ("organic", "cpc", "social", "referral", "email")


def _ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    return ibis.cases((den > 0, num.cast("float64") / den.cast("float64")), else_=ibis.null("float64"))


def feature_expr(now: datetime, min_events: int = 1, categories: tuple[str, ...] = CATEGORIES,
                 customers_only: bool = False, order_event: str = ORDER_COMPLETED) -> ir.Table:
    """Features per profile with at least ``min_events`` events (only profiles
    with a userId when ``customers_only``)."""
    e = EVENTS
    if customers_only:
        e = e.filter(e.profile_id.isin(IDENTITIES.filter(IDENTITIES.kind == "user_id").profile_id))
    is_track = e.type == "track"
    views = is_track & (e.event == "Product Viewed")
    category = e.properties["category"].str
    price = e.properties["price"].float
    agg = {
        "n_events": e.count(),
        "n_views": views.sum(),
        "n_adds": (is_track & (e.event == "Product Added")).sum(),
        "n_removes": (is_track & (e.event == "Product Removed")).sum(),
        "n_checkouts": (is_track & (e.event == "Checkout Started")).sum(),
        "n_orders": (is_track & (e.event == order_event)).sum(),
        "order_value": e.revenue_reporting.mean(where=is_track & (e.event == order_event)),
        "viewed_price": price.mean(where=views),
        "active_days": e.timestamp.date().nunique(),
        "email_opens": (is_track & (e.event == "Email Opened")).sum(),
        "email_sends": (is_track & (e.event == "Email Sent")).sum(),
        "coupon_orders": (is_track & (e.event == order_event) & e.properties["coupon"].notnull()).sum(),
        "n_pages": (e.type == "page").sum(),
        "last_event": e.timestamp.max(),
    }
    for c in categories:
        agg[f"views_{c}"] = (views & (category == c)).sum()
    for ch in CHANNELS:
        agg[f"pages_{ch}"] = ((e.type == "page") & (e.channel == ch)).sum()
    for d in DEVICES:
        agg[f"events_{d}"] = (e.device == d).sum()
    per = e.group_by("profile_id").aggregate(**agg)
    per = per.filter(per.n_events >= min_events)
    p = PROFILES
    j = per.join(p, "profile_id")
    cols = {
        "events_per_session": _ratio(j.n_events, j.session_count),
        "views_per_session": _ratio(j.n_views, j.session_count),
        "sessions_per_active_day": _ratio(j.session_count, j.active_days),
        "add_rate": _ratio(j.n_adds, j.n_views),
        "remove_rate": _ratio(j.n_removes, j.n_adds),
        "checkout_rate": _ratio(j.n_checkouts, j.n_adds),
        "order_rate": _ratio(j.n_orders, j.n_checkouts),
        "viewed_price_log": (j.viewed_price + 1).ln(),
        "order_value_log": (j.order_value + 1).ln(),
        "recency_days": (ibis.literal(now).epoch_seconds() - j.last_event.epoch_seconds()) / 86400.0,
        "tenure_days": (ibis.literal(now).epoch_seconds() - j.first_seen.epoch_seconds()) / 86400.0,
        "orders_log": (j.n_orders + 1).cast("float64").ln(),
        "monetary_log": (j.revenue.fill_null(0) + 1).ln(),
        "email_open_rate": _ratio(j.email_opens, j.email_sends),
        "coupon_rate": _ratio(j.coupon_orders, j.n_orders),
    }
    shares = {f"share_{c}": _ratio(j[f"views_{c}"], j.n_views) for c in categories}
    cols.update(shares)
    # Taste concentration: the Herfindahl index of category shares (1 = one category only).
    herf = None
    for s in shares.values():
        term = s.fill_null(0) * s.fill_null(0)
        herf = term if herf is None else herf + term
    cols["taste_concentration"] = ibis.cases((j.n_views > 0, herf), else_=ibis.null("float64"))
    for d in DEVICES:
        cols[f"device_{d}"] = _ratio(j[f"events_{d}"], j.n_events)
    for ch in CHANNELS:
        cols[f"channel_{ch}"] = _ratio(j[f"pages_{ch}"], j.n_pages)
    cols["n_events"] = j.n_events
    return j.select("profile_id", **cols)


FEATURE_GROUPS = {
    "engagement": ("events_per_session", "views_per_session", "sessions_per_active_day", "email_open_rate", "tenure_days"),
    "funnel": ("add_rate", "remove_rate", "checkout_rate", "order_rate"),
    "money": ("viewed_price_log", "order_value_log", "recency_days", "orders_log", "monetary_log", "coupon_rate"),
    "taste": tuple(f"share_{c}" for c in CATEGORIES) + ("taste_concentration",),
    "devices": tuple(f"device_{d}" for d in DEVICES),
    "channels": tuple(f"channel_{c}" for c in CHANNELS),
}
# What the clusterer uses unless told otherwise. Category shares describe a
# person's taste, not how they shop, and device mix follows devices more than
# habits: both stay in the matrix (and in descriptions) but by default do not
# drive the clusters.
DEFAULT_FEATURES = FEATURE_GROUPS["engagement"] + FEATURE_GROUPS["funnel"] + FEATURE_GROUPS["money"] \
    + FEATURE_GROUPS["channels"] + ("taste_concentration",)

