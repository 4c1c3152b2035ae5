"""Recommendation benchmarks (issue 6).

- MovieLens-100k under the protocol of the Microsoft Recommenders algorithm
  comparison (per-user stratified random 75/25 split, top-10 of unseen items;
  MAP, nDCG@10, precision@10, recall@10), every generator and the ranker
  beside their published table.
- The simulator: the temporal leaderboard, and how closely each customer's
  top 10 follows their hidden favourite category.
- Serving: GET /v1/recommendations at 500 req/s, open loop, from another
  process on this machine.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

# Their README's table (MovieLens-100k, top 10): MAP, nDCG@10, precision@10, recall@10.
PUBLISHED = {
    "ALS": (0.004732, 0.044239, 0.048462, 0.017796), "BiVAE": (0.146126, 0.475077, 0.411771, 0.219145),
    "BPR": (0.132478, 0.441997, 0.388229, 0.212522), "FastAI": (0.025503, 0.147866, 0.130329, 0.053824),
    "LightGCN": (0.088526, 0.419846, 0.379626, 0.144336), "NCF": (0.107720, 0.396118, 0.347296, 0.180775),
    "SAR": (0.110591, 0.382461, 0.330753, 0.176385), "SVD": (0.012873, 0.095930, 0.091198, 0.032783),
}
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def movielens() -> dict:
    from personable.recommend import generators as G
    from personable.recommend.evaluate import evaluate_split
    from personable.recommend.metrics import stratified_split
    from personable.recommend.movielens import load_movielens_100k
    from personable.recommend.ranker import CandidateRanker

    ml = load_movielens_100k()
    train, test = stratified_split(ml.ratings.assign(weight=1.0), 0.75, seed=42)
    items = ml.items[["item_id", "genres", "category"]]

    def ranker() -> CandidateRanker:
        return CandidateRanker([G.EASE(), G.ALS(), G.CoOccurrence(neighbours=200), G.Popularity(),
                                G.ContentBased(text_columns=("genres",)), G.SameCategory()])

    models = {"popularity": G.Popularity, "trending (7-day half-life)": lambda: G.Popularity(half_life_days=7),
              "ALS (implicit)": G.ALS, "BPR (implicit)": G.BPR, "EASE": G.EASE,
              "item-item co-occurrence": lambda: G.CoOccurrence(neighbours=200),
              "content (TF-IDF of genres)": lambda: G.ContentBased(text_columns=("genres",)),
              "same category": G.SameCategory, "ranker (LambdaRank over the six above)": ranker}
    result = evaluate_split(train, test, models, items, ml.users, progress=lambda n: print("  movielens:", n, flush=True))
    return result


def simulator(work: Path, customers: int, days: int) -> tuple[dict, Path]:
    from personable import Engine
    from personable.clock import SimulatedClock
    from personable.config import write_starter
    from personable.simulator import StoreSpec, simulate

    sim = simulate(work / "rec-sim", StoreSpec(customers=customers, days=days, seed=17))
    project = work / "rec-project"
    write_starter(project, "bench-recommend")
    import yaml

    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["recommend"]["placements"]["relevance_only"] = {"max_per_category": None, "diversity": 0.0}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    out: dict = {"customers": customers, "days": days}
    with Engine(project, clock=SimulatedClock(START + timedelta(days=days))) as engine:
        engine.ingest(sim.events_path)
        engine.segments.compute()
        engine.recommend.import_catalog(sim.catalog_path)
        board = engine.recommend.evaluate("temporal", 10)
        out["leaderboard"] = board["leaderboard"]
        out["eval_users"] = board["users"]
        started = time.perf_counter()
        trained = engine.recommend.train()
        out["train_s"] = time.perf_counter() - started
        out["trained"] = trained
        truth = pd.read_csv(sim.truth_path)[["customer_id", "favourite_category"]]
        catalog = pd.read_csv(sim.catalog_path).set_index("product_id").category
        served = engine.recommend.served()
        log = engine.recommend._interactions()
        shares: dict[str, list[float]] = {"ranked": [], "home": [], "history": [], "popular": []}
        for customer, favourite in truth.itertuples(index=False):
            try:
                got = engine.recommend.recommend(customer, "relevance_only", n=10)
            except Exception:   # never signed up: no userId to look up by
                continue
            shares["ranked"].append(np.mean([catalog[i["item_id"]] == favourite for i in got["items"]]))
            home = engine.recommend.recommend(customer, "home", n=10)
            shares["home"].append(np.mean([catalog[i["item_id"]] == favourite for i in home["items"]]))
            shares["history"].append(np.mean(log[log.user == got["profile_id"]].item.map(catalog) == favourite))
            shares["popular"].append(np.mean([served.categories[i] == favourite for i in served.popular[:10]]))
        out["taste"] = {k: float(np.mean(v)) for k, v in shares.items()}
        out["taste_customers"] = len(shares["ranked"])
        out["profiles"] = engine.sql("SELECT profile_id FROM profiles").column("profile_id").to_pylist()
    return out, project


def serving(project: Path, profiles: list[str], rate: float = 500.0, seconds: float = 10.0) -> dict:
    import httpx

    from conftest import start_server, stop_server
    from loadgen import get_requests, run_raw

    rng = np.random.default_rng(3)
    server = start_server(project)
    try:
        token = server.admin["Authorization"].split(" ", 1)[1]
        items = [f"sku-{i:05d}" for i in range(400)]
        paths = []
        for _ in range(int(rate * seconds)):
            pid = profiles[rng.integers(len(profiles))]
            query = "placement=home&n=10&device=" + ("mobile" if rng.random() < 0.6 else "desktop")
            if rng.random() < 0.3:      # the page knows what was just viewed
                query += "&viewed=" + ",".join(rng.choice(items, 2, replace=False))
            paths.append(f"/v1/recommendations/{pid}?{query}")
        with httpx.Client(base_url=server.url, headers=server.admin, timeout=30) as http:
            for p in paths[:300]:           # warm: the recommender loads on the first request
                assert http.get(p).status_code == 200
        latencies, statuses, achieved = run_raw(server.url, get_requests(server.url, paths, token), rate)
    finally:
        stop_server(server)
    bad = sum(s != 200 for s in statuses)
    assert bad == 0, f"{bad} requests failed"
    return {"requests": len(paths), "rate": rate, "achieved": achieved,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "max_ms": float(np.max(latencies))}


def run_recommend_benchmarks(work: Path, cmd: str, customers: int = 5000, days: int = 60) -> str:
    ml = movielens()
    print(json.dumps({k: {m: v for m, v in r.items() if m != "explain"} for k, r in ml["results"].items()}, indent=1),
          flush=True)
    sim, project = simulator(work, customers, days)
    print(json.dumps({k: v for k, v in sim.items() if k not in ("profiles", "leaderboard")}, indent=1, default=str),
          flush=True)
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:   # the load generator in a clean process
        http = pool.apply(serving, (project, sim["profiles"]))
    print(json.dumps(http, indent=1), flush=True)

    ours = "\n".join(
        f"| **{r['model']}** | {r['map']:.4f} | **{r['ndcg@10']:.4f}** | {r['precision@10']:.4f} | {r['recall@10']:.4f} "
        f"| {r['coverage']:.3f} | {r['novelty']:.2f} | {r['fit_s']:.1f} s |" for r in ml["leaderboard"])
    theirs = "\n".join(f"| {name} (published) | {m:.4f} | {n:.4f} | {p:.4f} | {r:.4f} | | | |"
                       for name, (m, n, p, r) in sorted(PUBLISHED.items(), key=lambda kv: -kv[1][1]))
    rank = ml["results"]["ranker (LambdaRank over the six above)"]
    board = "\n".join(f"| {r['model']} | {r['ndcg@10']:.4f} | {r['precision@10']:.4f} | {r['recall@10']:.4f} | "
                      f"{r['hit_rate@10']:.3f} | {r['coverage']:.3f} | {r['novelty']:.2f} | "
                      f"{r.get('ndcg_lift', 0):+.0%} |" for r in sim["leaderboard"])
    t, tr = sim["taste"], sim["trained"]
    return f"""## Recommendations (issue 6)
Command: `{cmd}`.

### MovieLens-100k against the published table
The protocol of the Microsoft Recommenders algorithm comparison: every rating is an interaction; a per-user
stratified random 75/25 split (seed 42); top 10 of the items each user has not rated in training; binary
relevance. MAP is their `map` (normalised by each user's number of relevant items, the column of their table).
{ml['users']:,} users, {ml['items']:,} items, {ml['train_rows']:,} training / {ml['test_rows']:,} test ratings.
Their numbers come from their own split with the same seed, so small differences are noise of the split.

| model | MAP | nDCG@10 | precision@10 | recall@10 | coverage | novelty | training time |
|---|---|---|---|---|---|---|---|
{ours}
{theirs}

Target: nDCG@10 >= 0.48 with training under 60 s. The ranker's training (both stages: six generators on
75% of each user's training items, LambdaRank on the other 25%, then the six refitted on all of it) took
**{rank['fit_s']:.1f} s**; recommending for all users {rank['recommend_s']:.1f} s. Its candidates held
{rank['explain']['candidate_recall']:.0%} of the held-out items; the features it leaned on most:
{', '.join(list(rank['explain']['importance'])[:6])}.

implicit's BPR is well below the published BPR (cornac's): a search over factors, learning rate,
regularization and iterations (best shown) did not close the gap; ALS does far better here than in their table
with few factors (16) and firm regularization.

### The simulator: does a customer's list follow their tastes?
{sim['customers']:,} simulated customers over {sim['days']} days; each has a hidden taste over the store's ten
categories (the truth file's favourite category). Share of the top 10 in the customer's favourite category,
over {sim['taste_customers']:,} customers:

| list | favourite-category share |
|---|---|
| the ranker's top 10 (`relevance_only` placement: no category cap, no diversity) | **{t['ranked']:.3f}** |
| the `home` placement (at most 3 per category, MMR diversity 0.3) | {t['home']:.3f} |
| the customer's own interaction history | {t['history']:.3f} |
| the 10 most popular items | {t['popular']:.3f} |

Training on the store (catalog, {tr['interactions']:,} interactions, {tr['profiles']:,} profiles, eight generators,
the ranker, precomputing every profile's top 50 with reasons): {sim['train_s']:.1f} s.

Leaderboard, temporal split (each profile's latest 20% of items held out; {sim['eval_users']:,} profiles):

| model | nDCG@10 | precision@10 | recall@10 | hit rate@10 | coverage | novelty | nDCG vs popularity |
|---|---|---|---|---|---|---|---|
{board}

Within a category the simulator picks products almost at random (weighted by price), so which item comes next is
mostly luck: every personal model sits near the same nDCG, far above popularity.

### Serving
`GET /v1/recommendations/{{id}}?placement=home&n=10&device=...` (30% with `viewed=` items), open loop at
{http['rate']:.0f} req/s for {http['requests']:,} requests over the simulator's profiles, one uvicorn worker, the
load generator in another process on the same 2 cores; latency from each request's scheduled start.

| measure | value | target |
|---|---|---|
| achieved rate | {http['achieved']:.0f} req/s | 500 |
| p50 | {http['p50_ms']:.2f} ms | |
| p99 | **{http['p99_ms']:.2f} ms** | <= 10 ms |
| max | {http['max_ms']:.1f} ms | |
"""
