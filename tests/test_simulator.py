from __future__ import annotations

import csv
import json
from collections import defaultdict

from personable.simulator import StoreSpec, simulate


def test_simulator_is_seeded_and_keeps_ground_truth(tmp_path):
    a = simulate(tmp_path / "a", StoreSpec(customers=300, days=30, seed=3))
    b = simulate(tmp_path / "b", StoreSpec(customers=300, days=30, seed=3))
    assert a.events_path.read_bytes() == b.events_path.read_bytes()
    truth = list(csv.DictReader(open(a.truth_path)))
    assert len(truth) == 300
    assert {"segment", "churned", "preferred_hour", "anonymous_ids", "favourite_category"} <= set(truth[0])
    crm_truth = list(csv.DictReader(open(a.crm_truth_path)))
    assert len(crm_truth) == a.crm_rows > sum(r["signed_up"] == "True" for r in truth)  # duplicates exist


def test_funnel_depends_on_latent_segment(tmp_path):
    sim = simulate(tmp_path, StoreSpec(customers=1500, days=40, seed=5))
    seg = {r["customer_id"]: r["segment"] for r in csv.DictReader(open(sim.truth_path))}
    anon_to_customer = {}
    for r in csv.DictReader(open(sim.truth_path)):
        for a in r["anonymous_ids"].split("|"):
            anon_to_customer[a] = r["customer_id"]
    views, orders = defaultdict(int), defaultdict(int)
    kinds = set()
    for line in open(sim.events_path):
        e = json.loads(line)
        kinds.add(e.get("event") or e["type"])
        who = e.get("userId") or anon_to_customer.get(e.get("anonymousId"))
        if e.get("event") == "Product Viewed":
            views[seg[who]] += 1
        elif e.get("event") == "Order Completed":
            orders[seg[who]] += 1
    rate = {s: orders[s] / views[s] for s in views}
    assert rate["loyal_big_spender"] > rate["bargain_hunter"] > rate["window_shopper"]
    assert {"Product Viewed", "Product Added", "Product Removed", "Cart Viewed", "Checkout Started",
            "Order Completed", "Email Sent", "Email Opened", "identify", "page"} <= kinds
