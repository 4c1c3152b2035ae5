"""Point-in-time features (no leakage), time splits, and the churn model on
the simulator against its ground-truth churn."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from personable import Engine
from personable.clock import SimulatedClock
from personable.errors import NotFound, ValidationFailed
from personable.predict.churn import ChurnModel
from personable.predict.features import FEATURES, activity_after, customer_features, time_splits
from personable.simulator import StoreSpec, simulate

from conftest import OFFLINE_STORES, project_on

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    """The tests on a project of their own (the HTTP one) run on each offline store."""
    return project_on(request, tmp_path)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("predict-sim"), StoreSpec(customers=2500, days=60, seed=41))


@pytest.fixture(scope="module", params=OFFLINE_STORES)
def store(request, tmp_path_factory, simulated):
    """The simulated shop, ingested once per offline store; tests that change
    it work on a copy (``copy_project``)."""
    base, sim = tmp_path_factory.mktemp("predict"), simulated
    project_on(request, base, "predict")
    # The models are judged against the simulated truth of every simulated person, so
    # every event is kept; what consent changes is tested in tests/test_consent.py.
    import yaml

    config = base / "proj" / "personable.yaml"
    raw = yaml.safe_load(config.read_text())
    raw["privacy"]["collection_refused"] = "keep"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(base / "proj", clock=SimulatedClock(START + timedelta(days=60))) as engine:
        engine.ingest(sim.events_path)
    return base, sim


def test_features_as_of_a_cutoff_ignore_everything_after_it(store, tmp_path, copy_project):
    base, _ = store
    cutoff = START + timedelta(days=35)
    copy = copy_project(base / "proj", tmp_path / "copy")
    with Engine(base / "proj") as engine:
        full = engine.store.execute(customer_features(cutoff)).to_pandas().sort_values("profile_id").reset_index(drop=True)
        after = engine.store.execute(activity_after(cutoff, 15)).to_pandas()
    with Engine(copy) as engine:  # the same store with every event from the cutoff on deleted
        with engine.store._writing() as db:
            db.execute("DELETE FROM events WHERE timestamp >= ?", [cutoff])
        cut = engine.store.execute(customer_features(cutoff)).to_pandas().sort_values("profile_id").reset_index(drop=True)
    assert len(full) > 500 and len(after) > 100
    pd.testing.assert_frame_equal(full, cut)        # identical: nothing after the cutoff was used
    assert set(FEATURES) <= set(full.columns)


def test_time_splits_are_ordered_and_a_horizon_apart():
    splits = time_splits(START + timedelta(days=50), 10)
    assert [s.name for s in splits] == ["train", "validation", "test"]
    assert [s.cutoff for s in splits] == [START + timedelta(days=d) for d in (30, 40, 50)]
    assert splits[0].label_end == splits[1].cutoff


def _churn_data(engine: Engine, truth: pd.DataFrame, cutoff: datetime, horizon: int):
    ids = engine.sql("SELECT value AS customer_id, profile_id FROM identities WHERE kind = 'user_id'").to_pandas()
    f = engine.store.execute(customer_features(cutoff)).to_pandas().merge(ids, on="profile_id").merge(truth, on="customer_id")
    day = (cutoff - START).days
    y = (f.churned.astype(str) == "True") & (pd.to_numeric(f.churn_day, errors="coerce") < day + horizon)
    return f[list(FEATURES)].to_numpy(float), y.astype(int).to_numpy()


def test_churn_model_against_the_simulated_truth(store):
    base, sim = store
    truth = pd.read_csv(sim.truth_path)
    with Engine(base / "proj") as engine:
        _, train, test = time_splits(START + timedelta(days=45), 15)   # train as of day 30, test as of day 45
        X, y = _churn_data(engine, truth, train.cutoff, 15)
        Xt, yt = _churn_data(engine, truth, test.cutoff, 15)
    lgbm = ChurnModel(cv=3, search_iter=3).fit(X, y, list(FEATURES))
    baseline = ChurnModel(model="logistic", cv=3, search_iter=2).fit(X, y, list(FEATURES))
    scores, base_scores = lgbm.evaluate(Xt, yt), baseline.evaluate(Xt, yt)
    assert scores["auc"] > 0.7 and base_scores["auc"] > 0.6, (scores, base_scores)
    assert 0 < scores["brier"] < 0.25 and scores["pr_auc"] > scores["base_rate"]
    p = lgbm.churn_probability(Xt)
    assert np.allclose(lgbm.predict_proba(Xt).sum(axis=1), 1.0) and set(lgbm.predict(Xt)) <= {0, 1}
    assert np.all((p >= 0) & (p <= 1)) and lgbm.search_["cv_auc_mean"] > 0.6
    assert len(scores["calibration"]) >= 5
    imp = lgbm.importance(Xt, yt, repeats=2)
    assert set(imp["gain"]) == set(FEATURES) and set(imp["permutation"]) == set(FEATURES)
    assert max(imp["permutation"].values()) > 0


def test_churn_model_checks_its_parameters():
    X, y = np.random.default_rng(0).normal(size=(40, 2)), np.array([0, 1] * 20)
    with pytest.raises(ValueError, match="model must be one of"):
        ChurnModel(model="xgboost").fit(X, y, ["a", "b"])
    with pytest.raises(ValueError, match="both classes"):
        ChurnModel().fit(X, np.zeros(40, dtype=int), ["a", "b"])
    with pytest.raises(ValueError, match="not fitted"):
        ChurnModel().predict_proba(X)


def test_best_send_hour_beats_the_population_hour(store):
    from personable.predict.send_time import SendTimeModel, engagement_expr, within

    base, sim = store
    truth = pd.read_csv(sim.truth_path)[["customer_id", "preferred_hour"]]
    with Engine(base / "proj") as engine:
        engagement = engine.store.execute(engagement_expr()).to_pandas()
        ids = engine.sql("SELECT value AS customer_id, profile_id FROM identities WHERE kind = 'user_id'").to_pandas()
    model = SendTimeModel().fit(engagement)
    chosen = model.predict(engagement).merge(ids, on="profile_id").merge(truth, on="customer_id")
    hit = within(chosen.best_send_hour, chosen.preferred_hour).mean()
    baseline = within(np.full(len(chosen), model.population_best_open_hour_), chosen.preferred_hour).mean()
    assert len(chosen) > 500 and hit > 0.5 and hit > 2 * baseline, (hit, baseline)
    assert chosen.best_send_weekday.between(0, 6).all()
    # Thin histories lean on the population: a profile seen once at 03:00 is not sent to at 03:00.
    thin = pd.DataFrame({"profile_id": ["x"] * 1 + ["y"] * 40, "hour": [3] + [20] * 40, "weekday": [1] * 41,
                         "opens": [0] + [1] * 40, "visits": [1] + [0] * 40})
    few = SendTimeModel(prior_strength=3).fit_predict(thin).set_index("profile_id")
    assert few.loc["x", "best_send_hour"] == 20 and few.loc["y", "best_send_hour"] == 20
    assert within([23, 0, 5], [0, 23, 7]).tolist() == [True, True, False]
    # ... and on their group's habits before the population's: x's group opens at 08:00.
    grouped = pd.concat([thin, pd.DataFrame({"profile_id": ["z"] * 10, "hour": [8] * 10, "weekday": [1] * 10,
                                             "opens": [1] * 10, "visits": [0] * 10})])
    by_group = SendTimeModel(prior_strength=3).fit_predict(grouped, pd.Series({"x": "a", "z": "a", "y": "b"}))
    assert by_group.set_index("profile_id").loc["x", "best_send_hour"] == 8


def test_next_purchase_value_against_the_naive_baseline(store):
    from personable.predict.next_purchase import NextPurchaseModel, next_order_value

    base, _ = store

    def data(engine, cutoff):
        f = engine.store.execute(customer_features(cutoff)).to_pandas()
        y = engine.store.execute(next_order_value(cutoff, 15)).to_pandas()
        j = f.merge(y, on="profile_id")
        return j[list(FEATURES)].to_numpy(float), j.next_order_value.to_numpy(float)

    with Engine(base / "proj") as engine:
        X, y = data(engine, START + timedelta(days=30))
        Xt, yt = data(engine, START + timedelta(days=45))
    model = NextPurchaseModel().fit(X, y, list(FEATURES))
    scores = model.evaluate(Xt, yt)
    assert scores["n"] > 50 and scores["model"]["mae"] > 0
    assert scores["model"]["mae"] < scores["naive"]["mae"] * 1.05, scores   # at least as good as the naive guess
    ridge = NextPurchaseModel(model="ridge").fit(X, y, list(FEATURES)).evaluate(Xt, yt)
    assert ridge["model"]["rmse"] > 0
    with pytest.raises(ValueError, match="lightgbm or ridge"):
        NextPurchaseModel(model="svm").fit(X, y, list(FEATURES))


def test_drift_is_seen_where_the_data_moved_and_not_elsewhere():
    from personable.predict.drift import DriftThresholds, drift_report, psi

    rng = np.random.default_rng(3)
    same = rng.normal(size=5000)
    assert psi(same[:2500], same[2500:]) < 0.02
    assert psi(rng.normal(size=3000), rng.normal(1.0, 1.0, size=3000)) > 0.2
    report = drift_report({"a": rng.normal(size=2000), "b": rng.exponential(size=2000), "c": [1.0]},
                          {"a": rng.normal(size=2000), "b": rng.exponential(3.0, size=2000), "c": [2.0]})
    by = {c["column"]: c for c in report["columns"]}
    assert report["drifted"] == ["b"] and by["b"]["psi"] > 0.2 and by["b"]["ks_pvalue"] < 1e-6
    assert not by["a"]["drifted"] and by["c"]["note"] == "too few values to compare"
    strict = drift_report({"a": same[:2500]}, {"a": same[2500:] + 0.1}, DriftThresholds(psi=0.001, ks_pvalue=0.5))
    assert strict["drifted"] == ["a"]


def test_registry_train_score_drift_and_segments(store, tmp_path, copy_project):
    base, _ = store
    project = copy_project(base / "proj", tmp_path / "registry")
    now = START + timedelta(days=60)
    with Engine(project, clock=SimulatedClock(now)) as engine:
        churn = engine.models.train("churn", horizon_days=15)
        assert churn["version"] == 1 and churn["metrics"]["auc"] > 0.6 and churn["data_hash"]
        assert churn["train_cutoff"] == (now - timedelta(days=30)).isoformat() and churn["features"] == list(FEATURES)
        scored = engine.models.score("churn")
        assert scored["scored"] > 500 and scored["traits"] == ["churn_risk"]
        clv = engine.models.train("clv", horizon_days=15)
        assert clv["params"]["r"] > 0 and clv["metrics"]["repeat_buyers"] > 50
        engine.models.score("clv")
        # Thin send-time histories lean on their cluster's habits once clusters exist.
        pids = engine.sql("SELECT profile_id FROM profiles ORDER BY profile_id").column("profile_id").to_pylist()
        import pyarrow as pa

        engine.store.write_computed(["cluster"], pa.table({"profile_id": pids, "cluster": [i % 3 for i in range(len(pids))]}), now)
        assert engine.models._groups().nunique() == 3
        engine.models.train("send_time")
        engine.models.score("send_time")
        someone = engine.sql("SELECT profile_id FROM computed_traits WHERE key = 'clv_12m' LIMIT 1").to_pylist()[0]["profile_id"]
        computed = engine.store.profile(someone)["computed"]
        assert {"churn_risk", "clv_12m", "p_alive", "best_send_hour"} <= set(computed)
        # Scores are computed traits: segments use them.
        made = engine.segments.create("likely_to_churn", {"rule": {"computed": "churn_risk", "gt": 0.5}})
        assert made["size"] >= 0
        drift = engine.models.drift("churn")
        assert {c["column"] for c in drift["columns"]} == set(FEATURES) | {"score:churn_risk"}
        assert engine.models.show("churn")["monitoring"][0]["kind"] == "drift"
        again = engine.models.train("churn", horizon_days=15, model="logistic")
        assert again["version"] == 2 and again["params"]["model"] == "logistic"
        assert [v["version"] for v in engine.models.list() if v["name"] == "churn"] == [1, 2]
        with pytest.raises(ValidationFailed):
            engine.models.train("magic")
        with pytest.raises(NotFound):
            engine.models.show("next_purchase")


def test_models_cli_and_performance_tracking(store, tmp_path, copy_project):
    import json as _json

    from conftest import run_cli

    base, _ = store
    project = copy_project(base / "proj", tmp_path / "cli")
    at = ["--as-of", "2026-03-02T00:00:00Z"]     # the simulated store's present
    trained = _json.loads(run_cli("models", "train", "next_purchase", "--horizon", "15", *at, "--json", project=project).stdout)
    assert trained["version"] == 1 and trained["metrics"]["model"]["mae"] > 0
    listing = _json.loads(run_cli("models", "list", "--json", project=project).stdout)
    assert [(v["name"], v["version"]) for v in listing] == [("next_purchase", 1)]
    evaluated = _json.loads(run_cli("models", "evaluate", "next_purchase", *at, "--json", project=project).stdout)
    assert evaluated["metrics"]["n"] >= 0 and evaluated["window_days"] == 15
    assert "next_order_value" in _json.loads(run_cli("models", "score", "next_purchase", *at, "--json", project=project).stdout)["traits"]
    report = _json.loads(run_cli("models", "drift", "next_purchase", *at, "--json", project=project).stdout)
    assert report["version"] == 1 and report["columns"]
    shown = run_cli("models", "show", "next_purchase", project=project).stdout
    assert "next_purchase v1" in shown and "performance" in shown
    missing = run_cli("models", "show", "churn", project=project, check=False)
    assert missing.returncode == 3


def test_models_over_http(server):
    with server.client() as http:
        assert http.get("/v1/models", headers=server.admin).json() == {"items": []}
        assert http.get("/v1/models").status_code == 401
        assert http.get("/v1/models/churn", headers=server.admin).status_code == 404
        bad = http.post("/v1/admin/models/magic/train", headers=server.admin, json={})
        assert bad.status_code == 400 and "unknown model" in bad.json()["error"]["message"]
        empty = http.post("/v1/admin/models/clv/train", headers=server.admin, json={"horizon_days": 7})
        assert empty.status_code == 400 and empty.json()["error"]["code"] == "validation_failed"
        assert "/v1/models/{name}/drift" in http.get("/openapi.json").json()["paths"]


def _maintain_config(project, models: dict, **extra) -> None:
    import yaml

    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw.setdefault("models", {})["maintain"] = models
    raw["models"].update(extra)
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_maintenance_trains_when_due_checks_drift_and_scores(store, tmp_path, copy_project):
    base, _ = store
    project = copy_project(base / "proj", tmp_path / "maintain")
    _maintain_config(project, {"churn": {"retrain_days": 7, "retrain_on_drift": False}, "send_time": {"retrain_days": 1}},
                     horizon_days=15)
    now = START + timedelta(days=60)
    with Engine(project, clock=SimulatedClock(now)) as engine:
        first = {d["model"]: d for d in engine.models.maintain()}
        assert [s["step"] for s in first["churn"]["steps"]] == ["train", "score"]
        assert first["churn"]["steps"][0]["reason"] == "first" and first["send_time"]["steps"][-1]["scored"] > 500
        assert engine.models.show("churn")["horizon_days"] == 15       # from models.horizon_days
    with Engine(project, clock=SimulatedClock(now + timedelta(days=2))) as engine:
        second = {d["model"]: d for d in engine.models.maintain()}
        # churn is 2 days old: judged on the labels that arrived, drift checked (scores too), scored again
        assert [s["step"] for s in second["churn"]["steps"]] == ["evaluate", "drift", "score"]
        assert second["send_time"]["steps"][0] == {"step": "train", "version": 2, "reason": "schedule"}
        kinds = [m["kind"] for m in engine.models.show("churn")["monitoring"]]
        assert sorted(kinds) == ["drift", "performance"]
        drift = next(m["report"] for m in engine.store.monitoring("churn", 5) if m["kind"] == "drift")
        assert "score:churn_risk" in {c["column"] for c in drift["columns"]}
    _maintain_config(project, {"churn": {"retrain_days": 30}}, drift={"psi": 0.0001, "ks_pvalue": 0.999})
    with Engine(project, clock=SimulatedClock(now + timedelta(days=3))) as engine:
        (third,) = engine.models.maintain()
        assert {"step": "train", "version": 2, "reason": "drift"} in third["steps"]      # drift past the strict lines
        assert [(v["version"], v["reason"]) for v in engine.models.list() if v["name"] == "churn"] == \
            [(1, "first"), (2, "drift")]
    _maintain_config(project, {"clv": {}})
    with Engine(project, clock=SimulatedClock(START + timedelta(days=1))) as engine:   # nothing to learn from yet
        (early,) = engine.models.maintain()
        assert early["skipped"].startswith("cannot train clv") and early["steps"] == []


def test_models_config_is_checked(tmp_path):
    from personable.config import load_config
    from personable.config import write_starter
    from personable.errors import ConfigError

    write_starter(tmp_path / "p", "p")
    _maintain_config(tmp_path / "p", {"churn": {"retrain_days": -1, "score": "yes"}, "magic": {}},
                     drift={"psi": "high"}, horizon_days=0)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "p")
    paths = {d.path for d in err.value.details}
    assert {"models.maintain.churn.retrain_days", "models.maintain.churn.score", "models.maintain.magic",
            "models.drift.psi", "models.horizon_days"} <= paths


def test_serve_maintains_the_listed_models_on_schedule(store, tmp_path, copy_project):
    from conftest import start_server, stop_server, wait_for_job

    base, _ = store
    project = copy_project(base / "proj", tmp_path / "served")
    _maintain_config(project, {"send_time": {"retrain_days": 1}})
    server = start_server(project)
    try:
        with server.client() as http:
            job = wait_for_job(server, "models")
            assert job["runs"] == 1 and job["failures"] == 0, job
            (version,) = http.get("/v1/models", headers=server.admin).json()["items"]
            assert (version["name"], version["reason"]) == ("send_time", "first")
            again = http.post("/v1/admin/models/maintain", headers=server.admin).json()["items"]
            assert [s["step"] for s in again[0]["steps"]] == ["score"]       # a day has not passed: score only
    finally:
        stop_server(server)


def test_models_train_and_score_only_profiles_the_consent_policy_allows(store, tmp_path, copy_project):
    """Training asks privacy.uses.training (analytics), scoring privacy.uses.scoring:
    a refused profile is in no training set and gets no score; each refusal is counted."""
    import yaml

    from personable.tables import PROFILES

    base, _ = store
    project = copy_project(base / "proj", tmp_path / "consent")
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["privacy"] = {"uses": {"scoring": "marketing_email"}}    # the simulator's people grant it 70% of the time
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    now = START + timedelta(days=60)
    with Engine(project, clock=SimulatedClock(now)) as engine:
        policy = engine.components.policy

        def refused(purpose):
            rows = engine.store.execute(policy.verdicts(purpose, PROFILES)).to_pylist()
            return {r["profile_id"] for r in rows if not r["allowed"]}

        no_analytics, no_email = refused("analytics"), refused("marketing_email")
        assert len(no_analytics) > 50 and len(no_email) > 300
        buyers = set(engine.sql("SELECT DISTINCT profile_id FROM profile_events WHERE event = 'Order Completed'")
                     .column("profile_id").to_pylist())
        trained = engine.models.train("clv", horizon_days=15)
        assert trained["metrics"]["customers"] == len(buyers - no_analytics)
        scored = engine.models.score("clv")
        with_score = set(engine.sql("SELECT profile_id FROM computed_traits WHERE key = 'clv_12m'")
                         .column("profile_id").to_pylist())
        assert scored["scored"] == len(buyers - no_email) and with_score and not with_score & no_email
        someone = sorted(buyers & no_email)[0]
        assert "clv_12m" not in engine.profile(someone)["computed"]
        counts = {(c["use"], c["purpose"]): c["count"] for c in engine.privacy.refusal_counts()}
        assert counts == {("training", "analytics"): len(no_analytics), ("scoring", "marketing_email"): len(no_email)}
        engine.privacy.set_consent(someone, {"marketing_email": True})
        assert engine.models.score("clv")["scored"] == scored["scored"] + 1
        assert "clv_12m" in engine.profile(someone)["computed"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_computed_trait_is_stored_as_no_value(project, value):
    """A degenerate model fit scores NaN: the profile must stay readable (it was not: its document was invalid JSON)."""
    import pyarrow as pa

    from personable.ports import PROFILES_CHANGED, ProfilesChanged

    with Engine(project, clock=SimulatedClock(START)) as engine:
        engine.identify("u1", {"plan": "pro"}, timestamp=START.isoformat())
        pid = engine.resolve("u1")
        engine.store.write_computed(["clv_12m", "p_alive"], pa.table(
            {"profile_id": [pid], "clv_12m": [value], "p_alive": [0.5]}), START)
        engine.bus.publish(PROFILES_CHANGED, ProfilesChanged((pid,), origin="models"))
        computed = engine.profile("u1")["computed"]
        assert "clv_12m" not in computed and computed["p_alive"] == 0.5
