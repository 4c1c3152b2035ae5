"""Predictive model benchmarks (issue 5).

- Quality on the simulator, against its ground truth: churn AUC (LightGBM and
  the logistic baseline), next purchase value against the naive guess, the
  best-send-hour hit rate against "the population's best hour", and CLV's
  expected against actual purchases in a held-out window.
- CLV fit time on CDNOW (the data in the `lifetimes` wheel).
- Training and scoring times through the registry (`engine.models`) for 100k
  and 1M customers, on a store generated in SQL: customers arrive over 180
  days, each with their own activity rate and lifetime, so there is churn to
  learn; simulating and ingesting 10M+ events would take most of the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from personable import Engine
from personable.clock import SimulatedClock
from personable.config import write_starter

NOW = datetime(2026, 7, 1, tzinfo=timezone.utc)
SIM_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


# -- quality on the simulator ------------------------------------------------------------------------
def simulator_quality(work: Path, customers: int, days: int, horizon: int) -> dict:
    from personable.predict.churn import ChurnModel
    from personable.predict.features import FEATURES, customer_features
    from personable.predict.next_purchase import NextPurchaseModel, next_order_value
    from personable.predict.send_time import SendTimeModel, engagement_expr, within
    from personable.simulator import StoreSpec, simulate

    sim = simulate(work / "sim", StoreSpec(customers=customers, days=days, seed=23))
    project = work / "predict-sim"
    write_starter(project, "bench-predict")
    now = SIM_START + timedelta(days=days)
    truth = pd.read_csv(sim.truth_path)
    out: dict = {"customers": customers, "days": days, "horizon_days": horizon}
    with Engine(project, clock=SimulatedClock(now)) as engine:
        engine.ingest(sim.events_path)
        ids = engine.sql("SELECT value AS customer_id, profile_id FROM identities WHERE kind = 'user_id'").to_pandas()
        test_cut, train_cut = now - timedelta(days=horizon), now - timedelta(days=2 * horizon)

        def churn(cutoff: datetime):
            f = engine.store.execute(customer_features(cutoff)).to_pandas().merge(ids, on="profile_id").merge(
                truth, on="customer_id")
            day = (cutoff - SIM_START).days
            churned, when = f.churned.astype(str) == "True", pd.to_numeric(f.churn_day, errors="coerce")
            y = churned & (when < day + horizon)
            alive = ~(churned & (when < day))      # not yet gone at the cutoff: the harder, useful question
            return f[list(FEATURES)].to_numpy(float), y.astype(int).to_numpy(), alive.to_numpy()

        X, y, _ = churn(train_cut)
        Xt, yt, alive = churn(test_cut)
        out["churn"] = {"train_rows": len(y), "test_rows": len(yt), "test_base_rate": float(yt.mean()),
                        "alive_rows": int(alive.sum()), "alive_base_rate": float(yt[alive].mean())}
        for kind in ("lightgbm", "logistic"):
            started = time.perf_counter()
            model = ChurnModel(model=kind, cv=3, search_iter=8).fit(X, y, list(FEATURES))
            scores = model.evaluate(Xt, yt)
            out["churn"][kind] = {k: scores[k] for k in ("auc", "pr_auc", "brier")} | {
                "cv_auc": model.search_["cv_auc_mean"], "seconds": time.perf_counter() - started,
                "alive_auc": model.evaluate(Xt[alive], yt[alive])["auc"]}
            if kind == "lightgbm":
                out["churn"]["top_features"] = list(model.importance(Xt, yt, repeats=2)["permutation"])[:5]

        def orders(cutoff: datetime):
            f = engine.store.execute(customer_features(cutoff)).to_pandas()
            j = f.merge(engine.store.execute(next_order_value(cutoff, horizon)).to_pandas(), on="profile_id")
            return j[list(FEATURES)].to_numpy(float), j.next_order_value.to_numpy(float)

        X, y = orders(train_cut)
        Xt, yt = orders(test_cut)
        lgbm = NextPurchaseModel().fit(X, y, list(FEATURES)).evaluate(Xt, yt)
        ridge = NextPurchaseModel(model="ridge").fit(X, y, list(FEATURES)).evaluate(Xt, yt)
        out["next_purchase"] = {"n": lgbm["n"], "lightgbm": lgbm["model"], "ridge": ridge["model"], "naive": lgbm["naive"]}

        engagement = engine.store.execute(engagement_expr()).to_pandas()
        st = SendTimeModel().fit(engagement)
        chosen = st.predict(engagement).merge(ids, on="profile_id").merge(truth[["customer_id", "preferred_hour"]], on="customer_id")
        out["send_time"] = {
            "profiles": len(chosen),
            "hit_rate": float(within(chosen.best_send_hour, chosen.preferred_hour).mean()),
            "population_hour_hit_rate": float(within(np.full(len(chosen), st.population_best_open_hour_),
                                                     chosen.preferred_hour).mean()),
            "population_best_open_hour": st.population_best_open_hour_}
        clv = engine.models.train("clv", horizon_days=horizon)["metrics"]
        out["clv"] = {k: clv[k] for k in ("customers", "repeat_buyers", "holdout_expected_purchases",
                                          "holdout_actual_purchases", "holdout_mae_per_customer")}
        observed = engine.models.train("churn", horizon_days=horizon)["metrics"]
        out["churn"]["registry_observed_labels_auc"] = observed["auc"]
    return out


# -- CLV on CDNOW -------------------------------------------------------------------------------------
def cdnow_fit(repeats: int = 5) -> dict:
    from personable.predict.clv import BetaGeoModel, GammaGammaModel

    spec = importlib.util.find_spec("lifetimes")
    if spec is None:
        raise SystemExit("the CDNOW data comes with the lifetimes wheel: pip install -e '.[dev]'")
    folder = os.path.join(spec.submodule_search_locations[0], "datasets")
    summary = pd.read_csv(os.path.join(folder, "cdnow_customers_summary.csv"))
    tx = pd.read_csv(os.path.join(folder, "cdnow_customers_summary_with_transactions.csv"))
    bg_times, gg_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        bg = BetaGeoModel().fit(summary.frequency, summary.recency, summary["T"])
        bg_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        gg = GammaGammaModel().fit(tx.x, tx.zbar)
        gg_times.append(time.perf_counter() - started)
    return {"customers": bg.n_customers_, "repeat_buyers": gg.n_customers_, "bg": bg.params_,
            "bg_log_likelihood": bg.log_likelihood_, "gg": gg.params_,
            "bg_seconds": float(np.median(bg_times)), "gg_seconds": float(np.median(gg_times))}


# -- speed at scale -----------------------------------------------------------------------------------
def build_customers(project: Path, customers: int) -> int:
    """Customers with their own arrival, lifetime and activity rate; events of
    seven kinds spread over each one's active span, orders with revenue."""
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        con = engine.store._writer
        con.execute("SELECT setseed(0.42)")
        con.execute(f"""
            CREATE TEMP TABLE cust AS
            SELECT 'p' || i AS pid, start_day, least(180.0, start_day + life) AS end_day,
                   greatest(1, CAST(round(rate * (least(180.0, start_day + life) - start_day)) AS INT)) AS n,
                   20 + 60 * spend AS basket, hour
            FROM (SELECT range AS i, random() * 175 AS start_day, -ln(random()) * 70 AS life,
                         0.02 + -ln(random()) * 0.25 AS rate, -ln(random()) AS spend,
                         CAST(floor(random() * 24) AS INT) AS hour FROM range({customers}))""")
        con.execute(f"""
            INSERT INTO events (message_id, type, event, profile_id, timestamp, received_at, properties, revenue,
                                revenue_reporting, device, channel, source)
            SELECT pid || '-' || k, CASE WHEN r < 0.15 THEN 'page' ELSE 'track' END,
                   CASE WHEN r < 0.15 THEN NULL WHEN r < 0.60 THEN 'Product Viewed' WHEN r < 0.72 THEN 'Product Added'
                        WHEN r < 0.78 THEN 'Order Completed' WHEN r < 0.86 THEN 'Email Opened'
                        ELSE 'Email Sent' END,
                   pid, ts, ts, '{{}}', NULL,
                   CASE WHEN r >= 0.72 AND r < 0.78 THEN round(basket * (0.5 + random()), 2) END,
                   'mobile', 'organic', 'bench'
            FROM (SELECT pid, basket, k, random() AS r,
                         TIMESTAMPTZ '{(NOW - timedelta(days=180)).isoformat()}'
                           + INTERVAL (CAST((start_day + random() * (end_day - start_day)) * 86400 AS BIGINT)) SECOND
                           + INTERVAL (CAST(hour - 12 AS BIGINT)) HOUR AS ts
                  FROM cust, range(n) t(k))
            WHERE ts < TIMESTAMPTZ '{NOW.isoformat()}'""")
        con.execute(f"""
            INSERT INTO profiles (profile_id, created_at, first_seen, last_seen, event_count, session_count, page_count,
                                  order_count, revenue, updated_at)
            SELECT profile_id, min(timestamp), min(timestamp), max(timestamp), count(*), count(*) // 8,
                   count(*) FILTER (WHERE type = 'page'), count(*) FILTER (WHERE event = 'Order Completed'),
                   coalesce(sum(revenue_reporting), 0), TIMESTAMPTZ '{NOW.isoformat()}'
            FROM events GROUP BY profile_id""")
        con.execute("""INSERT INTO identities (kind, value, profile_id, first_seen, source)
                       SELECT 'user_id', 'u' || substr(profile_id, 2), profile_id, first_seen, 'bench' FROM profiles""")
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM events").fetchone()[0]


def speed(work: Path, customers: int, horizon: int) -> dict:
    project = work / f"predict-{customers}"
    write_starter(project, "bench-predict-speed")
    started = time.perf_counter()
    events = build_customers(project, customers)
    print(f"built {customers:,} customers, {events:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    out: dict = {"customers": customers, "events": events, "models": {}}
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        for name in ("churn", "clv", "next_purchase", "send_time"):
            started = time.perf_counter()
            trained = engine.models.train(name, horizon_days=horizon)
            train_s = time.perf_counter() - started
            started = time.perf_counter()
            scored = engine.models.score(name)
            score_s = time.perf_counter() - started
            metrics = trained["metrics"]
            quality = (f"AUC {metrics['auc']:.3f}" if name == "churn" else
                       f"MAE {metrics['model']['mae']:.1f} vs naive {metrics['naive']['mae']:.1f}"
                       if name == "next_purchase" else
                       f"expected {metrics['holdout_expected_purchases']:,.0f} vs actual "
                       f"{metrics['holdout_actual_purchases']:,.0f} held-out purchases" if name == "clv" else "")
            out["models"][name] = {"train_s": train_s, "score_s": score_s, "scored": scored["scored"],
                                   "quality": quality}
            print(name, json.dumps(out["models"][name]), flush=True)
    return out


# -- the section --------------------------------------------------------------------------------------
def run_predict_benchmarks(work: Path, cmd: str, sizes: list[int], sim_customers: int = 8000) -> str:
    cdnow = cdnow_fit()
    print(json.dumps(cdnow, indent=2), flush=True)
    quality = simulator_quality(work, sim_customers, 90, 15)
    print(json.dumps(quality, indent=2), flush=True)
    runs = [speed(work, n, 30) for n in sizes]
    c, n, s, v = quality["churn"], quality["next_purchase"], quality["send_time"], quality["clv"]
    rows = "\n".join(
        f"| {r['customers']:,} | {r['events']:,} | {name} | {m['train_s']:.1f} s | {m['score_s']:.1f} s | {m['quality']} |"
        for r in runs for name, m in r["models"].items())
    bg, gg = cdnow["bg"], cdnow["gg"]
    return f"""## Predictive models (issue 5)
Command: `{cmd}`.

### On the simulator, against its ground truth
{quality['customers']:,} simulated customers over {quality['days']} days. Models train on features as of day
{quality['days'] - 2 * quality['horizon_days']} with outcomes in the next {quality['horizon_days']} days and are judged
on features as of day {quality['days'] - quality['horizon_days']} (a time split: the test window was never seen).

**Churn** (the simulator's true churn within {quality['horizon_days']} days; {c['test_rows']:,} test customers,
{c['test_base_rate']:.1%} churned):

| model | test AUC | PR-AUC | Brier | AUC among those still active at the cutoff | CV AUC (train) | train time (search + calibration) |
|---|---|---|---|---|---|---|
| LightGBM, calibrated | **{c['lightgbm']['auc']:.3f}** | {c['lightgbm']['pr_auc']:.3f} | {c['lightgbm']['brier']:.3f} | {c['lightgbm']['alive_auc']:.3f} | {c['lightgbm']['cv_auc']:.3f} | {c['lightgbm']['seconds']:.1f} s |
| logistic regression (baseline) | {c['logistic']['auc']:.3f} | {c['logistic']['pr_auc']:.3f} | {c['logistic']['brier']:.3f} | {c['logistic']['alive_auc']:.3f} | {c['logistic']['cv_auc']:.3f} | {c['logistic']['seconds']:.1f} s |

"Still active" leaves out customers who had already churned before the cutoff ({c['alive_rows']:,} customers,
{c['alive_base_rate']:.1%} churned in the window): telling who is about to leave is the harder, useful question.

Most important features (permutation, LightGBM): {', '.join(c['top_features'])}. The registry's own churn
model, trained and judged on *observed* inactivity (what a real project has) rather than the hidden truth:
AUC {c['registry_observed_labels_auc']:.3f}.

**Next purchase value** ({n['n']:,} customers who ordered in the test window):

| model | MAE | RMSE |
|---|---|---|
| LightGBM | **{n['lightgbm']['mae']:.1f}** | {n['lightgbm']['rmse']:.1f} |
| ridge | {n['ridge']['mae']:.1f} | {n['ridge']['rmse']:.1f} |
| naive (the customer's own average order, else the population's) | {n['naive']['mae']:.1f} | {n['naive']['rmse']:.1f} |

**Best send hour** ({s['profiles']:,} customers with opens or visits): the chosen hour is within ±1 h of the
simulator's true preferred hour for **{s['hit_rate']:.1%}** of them, against {s['population_hour_hit_rate']:.1%} for
always sending at the population's best open hour ({s['population_best_open_hour']}:00 UTC).

**CLV** (BG/NBD fitted as of day {quality['days'] - quality['horizon_days']}, {v['customers']:,} customers,
{v['repeat_buyers']:,} repeat buyers): expected {v['holdout_expected_purchases']:,.0f} purchases in the next
{quality['horizon_days']} days, actual {v['holdout_actual_purchases']:,.0f}; mean absolute error per customer
{v['holdout_mae_per_customer']:.3f}.

### CLV fit on CDNOW
{cdnow['customers']:,} customers (BG/NBD) and {cdnow['repeat_buyers']} repeat buyers (Gamma-Gamma); median of 5 fits.

| model | estimates (published: r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4; p 6.25, q 3.74, gamma 15.44) | fit time |
|---|---|---|
| BG/NBD | r {bg['r']:.3f}, alpha {bg['alpha']:.3f}, a {bg['a']:.3f}, b {bg['b']:.3f}, LL {cdnow['bg_log_likelihood']:.1f} | {cdnow['bg_seconds'] * 1000:.0f} ms |
| Gamma-Gamma | p {gg['p']:.2f}, q {gg['q']:.2f}, gamma {gg['gamma']:.2f} | {cdnow['gg_seconds'] * 1000:.0f} ms |

### Training and scoring time through the registry
`engine.models.train(name, horizon_days=30)` then `engine.models.score(name)` on a store generated in SQL
(customers arriving over 180 days with their own activity rate, lifetime, basket and hour). Training includes
computing the point-in-time features for the train and test windows, the search (churn: 4 settings x 3 folds)
and calibration, and the held-out evaluation; scoring includes features as of now and writing the computed
traits and the changed profiles' online documents.

| customers | events | model | train | score | held-out check |
|---|---|---|---|---|---|
{rows}
"""
