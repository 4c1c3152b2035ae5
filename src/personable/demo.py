"""`personable demo`: simulate a store, ingest it through the real write path,
and show what came out -- checked against the simulator's ground truth."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import CONFIG_FILE, write_starter
from .errors import ServerUnavailable


def run_demo(project: Path, customers: int = 2_000, days: int = 60, seed: int = 7, quiet: bool = False) -> dict[str, Any]:
    from .config import load_config
    from .engine import Engine
    from .server.run import running_server
    from .simulator import StoreSpec, simulate

    console = Console(quiet=quiet)
    if not (project / CONFIG_FILE).exists():
        write_starter(project, "demo-shop")
        console.print(f"[green]created a project[/] in {project.resolve()}")
    cfg = load_config(project)
    if running_server(cfg):
        raise ServerUnavailable("a server owns this project; stop it or run the demo with another --project")
    console.print(f"[bold]1/9 simulating[/] an online store: {customers:,} customers over {days} days (seed {seed})")
    t0 = time.perf_counter()
    # The simulated store's history ends today, so that windows ("in the last 30
    # days") and lifecycle stages mean what they say when you look at it.
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    sim = simulate(cfg.state_dir / "sim", StoreSpec(customers=customers, days=days, seed=seed,
                                                    start=today - timedelta(days=days)))
    console.print(f"    {sim.events:,} events, {sim.crm_rows:,} CRM rows in {time.perf_counter() - t0:.1f}s -> {sim.events_path.parent}")
    with Engine(cfg) as engine:
        reports = {}
        for step, (label, path, kind) in enumerate(
                (("events", sim.events_path, "events"), ("CRM export", sim.crm_path, "crm")), start=2):
            console.print(f"[bold]{step}/7 ingesting[/] {label} through the validated write path")
            with Progress(TextColumn("    "), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task(label, total=None)
                t0 = time.perf_counter()
                report = engine.ingest(path, kind=kind, source="simulator",
                                       progress=lambda done, total: bar.update(task, completed=done, total=total))
            secs = time.perf_counter() - t0
            reports[kind] = report.as_dict()
            console.print(f"    accepted {report.accepted:,}, duplicates {report.duplicates:,}, quarantined "
                          f"{report.quarantined:,} in {secs:.1f}s ({report.received / max(secs, 1e-9):,.0f} records/s)")
        console.print("[bold]4/9 data quality[/] of the CRM traits")
        quality = _quality(engine, console)
        console.print("[bold]5/9 resolving identities[/] no shared id links (typos, duplicates without an email)")
        resolution = _resolve(engine, sim, console)
        console.print("[bold]6/9 segments[/]: RFM, lifecycle, behavioural clusters, and the segments in personable.yaml")
        segments = _segments(engine, sim, console)
        console.print("[bold]7/9 predictive models[/]: churn, CLV, best send time, scored onto every profile")
        models = _models(engine, console)
        console.print("[bold]8/9 recommendations[/]: generators and a learned ranker, precomputed per profile")
        recommendations = _recommend(engine, sim, console)
        console.print("[bold]9/9 profiles[/]")
        summary = _summarize(engine, sim, console)
    summary.update(ingest=reports, quality=quality, resolution=resolution, segments=segments, models=models,
                   recommendations=recommendations)
    return summary


def _segments(engine: Any, sim: Any, console: Console) -> dict[str, Any]:
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    computed = engine.segments.compute()
    console.print("    RFM: " + ", ".join(f"{r['value']} {r['profiles']:,}" for r in computed["rfm_segments"][:6]) + ", ...")
    console.print("    lifecycle: " + ", ".join(f"{r['value']} {r['profiles']:,}" for r in computed["lifecycle_stages"]))
    clusters = engine.segments.cluster(stability_boots=2)
    got = engine.sql("""SELECT i.value AS customer_id, c.value ->> '$' AS cluster FROM computed_traits c
                        JOIN identities i ON i.profile_id = c.profile_id AND i.kind = 'user_id'
                        WHERE c.key = 'cluster'""").to_pandas().merge(pd.read_csv(sim.truth_path), on="customer_id")
    ari = adjusted_rand_score(got.segment, got.cluster) if len(got) else 0.0
    console.print(f"    {clusters['n_clusters']} behavioural clusters (k by silhouette; stability "
                  f"{clusters['stability']['ari_mean']:.2f}); against the simulated latent segments: "
                  f"adjusted Rand index {ari:.2f}")
    for c in clusters["clusters"]:
        console.print(f"      cluster {c['cluster']} ({c['share']:.0%}): {c['summary']}")
    refreshed = engine.segments.refresh()
    console.print("    segments: " + ", ".join(f"{r['segment_id']} {r['size']:,}" for r in refreshed["segments"])
                  + " (`personable segments list`)")
    return {"clusters": clusters["n_clusters"], "cluster_ari": ari,
            "segments": {r["segment_id"]: r["size"] for r in refreshed["segments"]}}


def _models(engine: Any, console: Console) -> dict[str, Any]:
    from .errors import PersonableError

    out: dict[str, Any] = {}
    for name in ("churn", "clv", "send_time"):
        try:
            trained = engine.models.train(name, horizon_days=15)
            scored = engine.models.score(name)
        except PersonableError as exc:     # a short simulated history cannot train every model
            console.print(f"    {name}: skipped ({exc.message})")
            continue
        m = trained["metrics"]
        detail = (f"AUC {m['auc']:.2f} on the latest 15 days it did not see" if name == "churn" else
                  f"{m['holdout_expected_purchases']:,.0f} purchases expected in the held-out 15 days, "
                  f"{m['holdout_actual_purchases']:,.0f} made" if name == "clv" else
                  f"population's best open hour {m['population_best_open_hour']}:00")
        console.print(f"    {name} v{trained['version']}: {detail}; {', '.join(scored['traits'])} on "
                      f"{scored['scored']:,} profiles")
        out[name] = trained["version"]
    console.print("    (`personable models list`; use the scores in segments: {computed: churn_risk, gt: 0.7})")
    return out


def _recommend(engine: Any, sim: Any, console: Console) -> dict[str, Any]:
    import pandas as pd

    from .errors import PersonableError

    engine.recommend.import_catalog(sim.catalog_path)
    try:
        trained = engine.recommend.train()
    except PersonableError as exc:
        console.print(f"    skipped ({exc.message})")
        return {}
    console.print(f"    {trained['profiles']:,} profiles, {trained['items']:,} items, {len(trained['generators'])} "
                  f"generators and the ranker in {trained['seconds']:.1f}s")
    truth = pd.read_csv(sim.truth_path)
    ids = engine.sql("SELECT value AS customer_id FROM identities WHERE kind = 'user_id'").to_pandas()
    known = truth.merge(ids, on="customer_id")
    if known.empty:
        return {"version": trained["version"]}
    someone = known.iloc[0]
    got = engine.recommend.recommend(someone.customer_id, "home", 5)
    console.print(f"    for {someone.customer_id} (secretly fond of {someone.favourite_category}):")
    for item in got["items"]:
        console.print(f"      {item['name']} ({item['category']}): {item['reason']}")
    console.print(f"    (`personable recommend show {someone.customer_id}`, GET /v1/recommendations/{someone.customer_id})")
    return {"version": trained["version"], "profiles": trained["profiles"]}


def _quality(engine: Any, console: Console) -> dict[str, Any]:
    report = engine.quality.report()
    rows = [r for r in report["fields"] if r["source"] == "*"]
    for r in rows:
        if r["problems"]:
            console.print(f"    {r['field']}: " + "; ".join(r["problems"]))
    console.print(f"    {len(rows)} fields checked, {sum(1 for r in rows if not r['problems'])} without problems "
                  "(full report: `personable quality`)")
    return {"fields": len(rows), "with_problems": [r["field"] for r in rows if r["problems"]]}


def _resolve(engine: Any, sim: Any, console: Console) -> dict[str, Any]:
    from .identity.resolution.evaluation import pairwise_scores
    from .simulator.truth import crm_row_profiles, crm_rows, crm_truth

    rows, truth = crm_rows(sim.crm_path), crm_truth(sim.crm_truth_path)
    before = pairwise_scores(crm_row_profiles(engine, rows), truth)
    summary = engine.resolution.run()
    after = pairwise_scores(crm_row_profiles(engine, rows), truth)
    console.print(f"    {summary['records']:,} person records, {summary['merged_profiles']:,} profiles merged, "
                  f"{summary['review']:,} pairs for review, {len(summary['blocked']['values']):,} shared or junk values "
                  f"not used as evidence ({summary['seconds']} s)")
    console.print(f"    CRM duplicates vs ground truth: F1 {before['f1']:.3f} with ids and emails alone -> "
                  f"{after['f1']:.3f} after resolution (precision {after['precision']:.3f}, recall {after['recall']:.3f})")
    return {"before": before, "after": after, "merged": summary["merged_profiles"], "review": summary["review"]}


def _summarize(engine: Any, sim: Any, console: Console) -> dict[str, Any]:
    stats = engine.stats()
    known = engine.sql("""SELECT count(DISTINCT profile_id) FROM identities WHERE kind = 'user_id'""").column(0)[0].as_py()
    console.print(f"    {stats['profiles']:,} profiles ({known:,} known customers, {stats['profiles'] - known:,} anonymous visitors), "
                  f"{stats['identities']:,} identifiers, {stats['merges']:,} merges, {stats['refused_links']:,} refused links")
    # Stitching against the ground truth: every device a signed-up customer logged
    # in on must resolve to that customer's one profile (devices never logged in on
    # stay anonymous: no deterministic signal links them; issue 3's matching may).
    truth_csv = "'" + str(sim.truth_path).replace("'", "''") + "'"
    ok, total = engine.sql(f"""
        WITH truth AS (
            SELECT customer_id, unnest(string_split(identified_anonymous_ids, '|')) AS anon
            FROM read_csv({truth_csv}, all_varchar = true) WHERE signed_up = 'True'
            UNION ALL  -- customers who never logged in on a device still count
            SELECT customer_id, NULL FROM read_csv({truth_csv}, all_varchar = true) WHERE signed_up = 'True'
        )
        SELECT count(*) FILTER (WHERE all_same), count(*) FROM (
            SELECT t.customer_id,
                   bool_and(u.profile_id IS NOT NULL AND (t.anon IS NULL OR t.anon = '' OR a.profile_id = u.profile_id)) AS all_same
            FROM truth t
            LEFT JOIN identities u ON u.kind = 'user_id' AND u.value = t.customer_id
            LEFT JOIN identities a ON a.kind = 'anonymous_id' AND a.value = t.anon
            GROUP BY t.customer_id)""").to_pylist()[0].values()
    exact = ok / max(total, 1)
    console.print(f"    stitching vs ground truth: {ok:,} of {total:,} customers have every device they logged in on in one profile ({exact:.1%})")
    top = engine.sql("""
        SELECT p.profile_id, any_value(i.value) FILTER (WHERE i.kind = 'user_id') AS user_id,
               p.order_count, round(p.revenue, 2) AS revenue, p.session_count, p.last_device, p.last_channel,
               count(i.value) AS identifiers
        FROM profiles p JOIN identities i USING (profile_id)
        GROUP BY ALL ORDER BY 4 DESC LIMIT 5""").to_pylist()
    t = Table("profile", "userId", "orders", "revenue", "sessions", "last device", "last channel", "identifiers",
              title="top customers by revenue")
    for r in top:
        t.add_row(r["profile_id"], str(r["user_id"]), str(r["order_count"]), f"{r['revenue']:,.2f}",
                  str(r["session_count"]), str(r["last_device"]), str(r["last_channel"]), str(r["identifiers"]))
    console.print(t)
    if top:
        console.print(f"    try: [bold]personable --project {engine.config.project_dir} profile show {top[0]['user_id']}[/]")
    reasons = engine.sql("""SELECT p.path || ': ' || p.problem AS reason, count(*) AS n
                            FROM (SELECT unnest(problems) AS p FROM quarantine) GROUP BY ALL ORDER BY n DESC LIMIT 5""").to_pylist()
    if reasons:
        console.print("    quarantined (see `personable quarantine`): " +
                      "; ".join(f"{r['n']:,} x {r['reason']}" for r in reasons))
    return {"stats": stats, "known_profiles": known, "stitching_exact": exact, "top_customers": top,
            "quarantine_reasons": reasons}
