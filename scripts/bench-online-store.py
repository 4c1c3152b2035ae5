"""Measure the OnlineStore adapters side by side, in one run: apply() of 50k
profile documents (with 4 lookup keys each), a full replacement of 50k
recommendation lists, and single-key reads (resolve + profile, recommendations)
as p50/p99 over 20k random reads from one thread.

    scripts/test-services.sh start
    PYTHONPATH=src python scripts/bench-online-store.py            # Redis from .test-services/state.env
    PYTHONPATH=src python scripts/bench-online-store.py redis://127.0.0.1:6379/0

Not a test: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

from personable.adapters.registry import open_adapter

N = 50_000
READS = 20_000
ROOT = Path(__file__).resolve().parents[1]


def document(pid: str) -> str:
    """About the size and shape of a real profile document (20 recent events)."""
    events = [{"type": "track", "event": "Product Viewed", "timestamp": "2026-02-01T10:00:00+00:00",
               "properties": {"product_id": f"sku-{i:05d}", "price": 19.99, "category": "books"},
               "context": {"device": "mobile", "channel": "web"}} for i in range(20)]
    return orjson.dumps({"profile_id": pid, "traits": {"email": "someone@example.com", "plan": "pro"},
                         "computed": {"order_count": 3, "revenue": 59.97}, "identities": [], "segments": ["vip"],
                         "consents": {}, "merged_from": [], "recent_events": events}).decode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(name: str, url: str, workdir: Path) -> dict[str, float]:
    store = open_adapter(url, workdir)
    docs = [(f"p{i}", document(f"p{i}")) for i in range(N)]
    keys = [k for i in range(N) for k in ((f"user_id:u{i}", f"p{i}"), (f"anonymous_id:a{i}", f"p{i}"),
                                          (f"email:{i:064x}", f"p{i}"), (f"profile:p{i}", f"p{i}"))]
    recs = [(f"p{i}", orjson.dumps({"version": 1, "items": [[f"sku-{j:05d}", 0.5, "popular"] for j in range(20)]}))
            for i in range(N)]
    out: dict[str, float] = {}
    t = time.perf_counter()
    store.apply(docs, keys, [], "2026-02-01T10:00:00+00:00")
    out["apply 50k new (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    store.apply(docs, keys, [], "2026-02-01T11:00:00+00:00")
    out["apply 50k again (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    store.put_recommendations(iter(recs), replace_all=True)
    out["replace 50k lists (s)"] = time.perf_counter() - t
    rng = random.Random(1)
    profile_ms, recs_ms = [], []
    for _ in range(READS):
        i = rng.randrange(N)
        t = time.perf_counter()
        assert store.profile(store.resolve(f"u{i}") or "") is not None
        profile_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        assert store.recommendations(f"p{i}") is not None
        recs_ms.append((time.perf_counter() - t) * 1e3)
    out["resolve+profile p50 (ms)"] = percentile(profile_ms, 0.5)
    out["resolve+profile p99 (ms)"] = percentile(profile_ms, 0.99)
    out["recommendations p50 (ms)"] = percentile(recs_ms, 0.5)
    out["recommendations p99 (ms)"] = percentile(recs_ms, 0.99)
    if name == "redis":
        store.put_recommendations([], replace_all=True)
        store.apply([], [], [d[0] for d in docs], None)
        store._r.unlink(*store._r.keys(f"{store.prefix}*"))
    store.close()
    return out


def main() -> None:
    if len(sys.argv) > 1:
        redis_url = sys.argv[1]
    else:
        state = dict(line.split("=", 1) for line in (ROOT / ".test-services" / "state.env").read_text().splitlines())
        redis_url = state["REDIS_URL"]
    with tempfile.TemporaryDirectory() as tmp:
        results = {"sqlite": measure("sqlite", "sqlite:///online.sqlite", Path(tmp)),
                   "redis": measure("redis", f"{redis_url}?prefix=bench-online:", Path(tmp))}
    print(f"{'':28}{'sqlite':>10}{'redis':>10}")
    for metric in results["sqlite"]:
        print(f"{metric:28}{results['sqlite'][metric]:10.3f}{results['redis'][metric]:10.3f}")


if __name__ == "__main__":
    main()
