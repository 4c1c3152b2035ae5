"""A JSONL file of Segment events with a realistic number of profiles: many
anonymous visitors (default 200k) of whom a few (5%) identify, every event with
a full Segment `context`. The simulator's file has far fewer profiles per event,
which hides the per-profile costs of the write path (stitching, profile
aggregates, online documents); this file does not.

Generated at run time into the benchmark's work directory, never committed:

  python benchmarks/realistic_events.py OUT.jsonl [--events N] [--visitors N]
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

PRODUCTS = [(f"sku-{i:05d}", f"Product {i}", round(5 + (i * 7919 % 200) + 0.99, 2)) for i in range(2000)]
PAGES = ["/", "/search", "/category/shoes", "/category/bags", "/sale", "/about", "/cart", "/checkout"]
REFERRERS = ["https://www.google.com/", "https://www.facebook.com/", "https://t.co/", "", "https://news.ycombinator.com/"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"]
LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "nl-NL"]
CAMPAIGNS = [None, None, {"name": "winter_sale", "source": "google", "medium": "cpc"},
             {"name": "newsletter", "source": "email", "medium": "email"}]
HOST = "https://shop.example.com"


def _context(rng: random.Random, visitor: int, path: str) -> dict:
    ctx = {
        "library": {"name": "analytics.js", "version": "4.1.0"},
        "page": {"path": path, "referrer": rng.choice(REFERRERS), "title": f"Shop - {path}", "url": HOST + path},
        "userAgent": AGENTS[visitor % len(AGENTS)],
        "ip": f"10.{visitor >> 16 & 255}.{visitor >> 8 & 255}.{visitor & 255}",
        "locale": LOCALES[visitor % len(LOCALES)],
        "device": {"type": "mobile" if visitor % 3 == 0 else "desktop", "id": f"dev-{visitor}"},
    }
    campaign = CAMPAIGNS[visitor % len(CAMPAIGNS)]
    if campaign:
        ctx["campaign"] = campaign
    return ctx


def generate(out: Path, events: int = 1_000_000, visitors: int = 200_000, identify_share: float = 0.05,
             days: int = 30, seed: int = 8) -> dict:
    """Write ``events`` events to ``out``; returns counts (events, visitors, identified)."""
    rng = random.Random(seed)
    end = datetime(2026, 11, 30, tzinfo=timezone.utc)
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    # Each event picks a visitor and a time; sorting the times keeps the file in
    # the order a collector would write it. Identifying visitors identify at a
    # random point in their history; their later events carry the userId.
    times = sorted(rng.random() * span for _ in range(events))
    identifiers = set(rng.sample(range(visitors), int(visitors * identify_share)))
    identified: set[int] = set()
    counts = {"events": 0, "visitors": visitors, "identified": 0, "page": 0, "track": 0, "identify": 0, "orders": 0}
    with out.open("w") as f:
        for i, offset in enumerate(times):
            v = rng.randrange(visitors)
            ts = (start + timedelta(seconds=offset)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            base = {"messageId": f"m-{seed}-{i}", "anonymousId": f"anon-{v}", "timestamp": ts}
            if v in identified:
                base["userId"] = f"user-{v}"
            r = rng.random()
            if v in identifiers and v not in identified and r < 0.2:
                identified.add(v)
                ev = {**base, "type": "identify", "userId": f"user-{v}",
                      "traits": {"email": f"visitor{v}@example.com", "first_name": f"Name{v}"}}
                path = "/account"
            elif r < 0.5:
                path = rng.choice(PAGES)
                ev = {**base, "type": "page", "name": path.strip("/") or "home", "properties": {"path": path}}
            else:
                pid, name, price = rng.choice(PRODUCTS)
                path = f"/product/{pid}"
                if r < 0.8:
                    ev = {**base, "type": "track", "event": "Product Viewed",
                          "properties": {"product_id": pid, "name": name, "price": price, "currency": "USD"}}
                elif r < 0.97:
                    ev = {**base, "type": "track", "event": "Product Added",
                          "properties": {"product_id": pid, "name": name, "price": price, "quantity": 1, "currency": "USD"}}
                else:
                    items = [rng.choice(PRODUCTS) for _ in range(rng.randint(1, 3))]
                    products = [{"product_id": p, "name": n, "price": pr, "quantity": 1} for p, n, pr in items]
                    total = round(sum(pr for _, _, pr in items), 2)
                    ev = {**base, "type": "track", "event": "Order Completed",
                          "properties": {"order_id": f"o-{seed}-{i}", "revenue": total, "total": total,
                                         "currency": "USD", "products": products}}
                    counts["orders"] += 1
                    path = "/checkout"
            ev["context"] = _context(rng, v, path)
            counts[ev["type"]] += 1
            f.write(json.dumps(ev, separators=(",", ":")))
            f.write("\n")
    counts["events"] = events
    counts["identified"] = len(identified)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--visitors", type=int, default=200_000)
    args = ap.parse_args()
    print(generate(Path(args.out), args.events, args.visitors))


if __name__ == "__main__":
    main()
