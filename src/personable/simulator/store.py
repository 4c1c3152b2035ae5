"""Simulate an online store's customers and write what its systems would export:
a Segment-style event stream (JSONL), a messy CRM export (CSV), and the ground
truth every later evaluation needs (latent segment, churn, true identity of each
record, preferred send hour)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson

from .people import make_person, messy_crm_row
from .world import SEGMENTS, Catalog, make_catalog

UA = {
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Tablet",
}
MEDIUMS = ("organic", "cpc", "social", "referral")


@dataclass(frozen=True)
class StoreSpec:
    customers: int = 2_000
    days: int = 60
    products: int = 400
    seed: int = 7
    start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)
    crm_duplicate_rate: float = 0.12


@dataclass
class SimulatedStore:
    events_path: Path
    crm_path: Path
    catalog_path: Path
    truth_path: Path
    crm_truth_path: Path
    events: int
    customers: int
    crm_rows: int
    counts: dict[str, int] = field(default_factory=dict)


class _Writer:
    def __init__(self) -> None:
        self.rows: list[tuple[datetime, bytes]] = []
        self.counts: dict[str, int] = {}
        self.seq = 0

    def add(self, ts: datetime, event: dict) -> None:
        self.seq += 1
        event["messageId"] = f"sim-{self.seq:09d}"
        event["timestamp"] = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        key = event.get("event") or event["type"]
        self.counts[key] = self.counts.get(key, 0) + 1
        self.rows.append((ts, orjson.dumps(event)))


def simulate(out_dir: str | Path, spec: StoreSpec = StoreSpec()) -> SimulatedStore:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    catalog = make_catalog(rng, spec.products)
    w = _Writer()
    truth_rows, crm_rows, crm_truth = [], [], []
    shares = np.array([s.share for s in SEGMENTS])
    seg_idx = rng.choice(len(SEGMENTS), size=spec.customers, p=shares / shares.sum())
    for i in range(spec.customers):
        person = make_person(rng, i, SEGMENTS[seg_idx[i]], spec)
        _simulate_customer(rng, person, catalog, spec, w)
        truth_rows.append(person.truth())
        if person.signed_up_at is not None:
            copies = 1 + int(rng.random() < spec.crm_duplicate_rate)
            for c in range(copies):
                crm_rows.append(messy_crm_row(rng, person, variant=c))
                crm_truth.append({"crm_row": len(crm_rows), "customer_id": person.customer_id})
    order = sorted(range(len(crm_rows)), key=lambda _: rng.random())  # exports are not sorted by customer
    crm_rows = [crm_rows[k] for k in order]
    crm_truth = [{"crm_row": n + 1, "customer_id": crm_truth[k]["customer_id"]} for n, k in enumerate(order)]

    w.rows.sort(key=lambda r: r[0])
    events_path = out / "events.jsonl"
    with open(events_path, "wb") as fh:
        for _, line in w.rows:
            fh.write(line + b"\n")
    crm_path = out / "crm_customers.csv"
    _write_csv(crm_path, crm_rows)
    catalog_path = out / "catalog.csv"
    _write_csv(catalog_path, [
        {"product_id": catalog.product_id[k], "name": catalog.name[k], "category": catalog.category[k],
         "brand": catalog.brand[k], "price": f"{catalog.price[k]:.2f}", "description": catalog.description[k]}
        for k in range(len(catalog.product_id))])
    truth_dir = out / "truth"
    truth_dir.mkdir(exist_ok=True)
    _write_csv(truth_dir / "customers.csv", truth_rows)
    _write_csv(truth_dir / "crm_rows.csv", crm_truth)
    return SimulatedStore(events_path, crm_path, catalog_path, truth_dir / "customers.csv", truth_dir / "crm_rows.csv",
                          events=len(w.rows), customers=spec.customers, crm_rows=len(crm_rows), counts=w.counts)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if not rows:
            return
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _product(rng: np.random.Generator, person, catalog: Catalog) -> int:
    cat = rng.choice(len(person.taste), p=person.taste)
    candidates = np.flatnonzero(catalog.category_index == cat)
    weights = catalog.price[candidates] ** (person.segment.price_affinity - 1.0)
    return int(rng.choice(candidates, p=weights / weights.sum()))


def _product_props(catalog: Catalog, k: int, quantity: int = 1) -> dict:
    return {"product_id": catalog.product_id[k], "name": catalog.name[k], "category": catalog.category[k],
            "brand": catalog.brand[k], "price": float(catalog.price[k]), "quantity": quantity, "currency": "USD"}


def _simulate_customer(rng: np.random.Generator, p, catalog: Catalog, spec: StoreSpec, w: _Writer) -> None:
    seg = p.segment
    day_end = spec.start + timedelta(days=spec.days)
    identified_devices: set[int] = set()
    order_no = 0
    for day in range(p.first_visit_day, spec.days):
        if p.churn_day is not None and day >= p.churn_day:
            break
        for _ in range(rng.poisson(seg.visits_per_day)):
            hour = int(np.clip(rng.normal(p.preferred_hour, 3.0), 0, 23))
            t = spec.start + timedelta(days=day, hours=hour, minutes=float(rng.uniform(0, 59)))
            if t >= day_end:
                continue
            dev = int(rng.integers(len(p.devices)))
            anon, dtype = p.devices[dev]
            ctx = {"userAgent": UA[dtype], "device": {"type": dtype}, "library": {"name": "analytics.js"},
                   "campaign": {"medium": MEDIUMS[int(rng.choice(len(MEDIUMS), p=seg.channel_mix))]}}
            base = {"anonymousId": anon, "context": ctx}
            known = p.signed_up_at is not None and p.signed_up_at <= t

            def ev(kind: str, when: datetime, **fields) -> None:
                event = {"type": kind, **base, **fields}
                if known and dev in identified_devices:
                    event["userId"] = p.customer_id
                w.add(when, event)

            if known and dev not in identified_devices and rng.random() < 0.7:
                identified_devices.add(dev)
                w.add(t, {"type": "identify", "userId": p.customer_id, **base, "traits": {"email": p.email}})
            ev("page", t, name="Home", properties={"path": "/"})
            cart: list[int] = []
            n_views = 1 + rng.poisson(max(seg.views_per_session - 1, 0.1))
            for _ in range(n_views):
                t += timedelta(seconds=float(rng.uniform(20, 120)))
                k = _product(rng, p, catalog)
                ev("track", t, event="Product Viewed", properties=_product_props(catalog, k))
                if rng.random() < seg.add_to_cart:
                    t += timedelta(seconds=float(rng.uniform(5, 30)))
                    cart.append(k)
                    ev("track", t, event="Product Added", properties={**_product_props(catalog, k), "cart_id": f"cart-{anon}"})
                if cart and rng.random() < seg.remove_from_cart * 0.3:
                    t += timedelta(seconds=float(rng.uniform(5, 30)))
                    gone = cart.pop(int(rng.integers(len(cart))))
                    ev("track", t, event="Product Removed", properties=_product_props(catalog, gone))
            if not cart:
                continue
            products = [_product_props(catalog, k) for k in cart]
            t += timedelta(seconds=float(rng.uniform(10, 60)))
            ev("track", t, event="Cart Viewed", properties={"cart_id": f"cart-{anon}", "products": products})
            if rng.random() >= seg.checkout:
                p.abandoned_carts += 1
                continue
            if not known:
                p.signed_up_at = t
                known = True
                identified_devices.add(dev)
                w.add(t, {"type": "identify", "userId": p.customer_id, **base, "traits": p.signup_traits()})
            elif dev not in identified_devices:
                identified_devices.add(dev)
                w.add(t, {"type": "identify", "userId": p.customer_id, **base, "traits": {"email": p.email}})
            value = round(sum(x["price"] for x in products), 2)
            coupon = {"coupon": "SAVE10"} if rng.random() < seg.coupon_rate else {}
            if coupon:
                value = round(value * 0.9, 2)
            t += timedelta(seconds=float(rng.uniform(30, 120)))
            ev("track", t, event="Checkout Started", properties={"value": value, "currency": "USD", "products": products,
                                                                 **coupon})
            if rng.random() < seg.order:
                order_no += 1
                t += timedelta(seconds=float(rng.uniform(30, 180)))
                ev("track", t, event="Order Completed", properties={
                    "order_id": f"{p.customer_id}-o{order_no}", "revenue": value, "total": value,
                    "currency": "USD", "products": products, **coupon})
                p.orders += 1
            else:
                p.abandoned_carts += 1
    p.extra["identified"] = identified_devices
    _emails(rng, p, spec, w)


def _emails(rng: np.random.Generator, p, spec: StoreSpec, w: _Writer) -> None:
    """Weekly campaigns; opens cluster around each person's preferred hour."""
    if p.signed_up_at is None or not p.consent.get("email_marketing"):
        return
    for week in range(spec.days // 7):
        send = spec.start + timedelta(days=7 * week + 2, hours=9)
        if send < p.signed_up_at or (p.churn_day is not None and send >= spec.start + timedelta(days=p.churn_day)):
            continue
        campaign = f"weekly-{week + 1}"
        server = {"userId": p.customer_id, "context": {"library": {"name": "personable-simulator"}}}
        w.add(send, {"type": "track", "event": "Email Sent", **server, "properties": {"campaign_id": campaign}})
        if rng.random() < p.open_rate:
            delay_days = int(rng.integers(0, 2))
            hour = int(np.clip(round(rng.normal(p.preferred_hour, 0.8)), 0, 23))
            opened = (send.replace(hour=hour, minute=int(rng.integers(60))) + timedelta(days=delay_days))
            if opened <= send:
                opened += timedelta(days=1)
            if opened >= spec.start + timedelta(days=spec.days):
                continue
            w.add(opened, {"type": "track", "event": "Email Opened", **server, "properties": {"campaign_id": campaign}})
            if rng.random() < 0.3:
                w.add(opened + timedelta(minutes=1), {"type": "track", "event": "Email Link Clicked", **server,
                                                       "properties": {"campaign_id": campaign}})
