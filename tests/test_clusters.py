"""Behavioural clusters: the estimator on data with a known answer, and the
whole path on the simulator against its latent segments."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from personable import Engine
from personable.clock import SimulatedClock
from personable.segments.clustering import METHODS, ProfileClusterer
from personable.simulator import StoreSpec, simulate

from conftest import OFFLINE_STORES, project_on, run_cli


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    """The whole path runs on each offline store."""
    return project_on(request, tmp_path)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=600, centers=[[0, 0, 0], [6, 0, 2], [0, 7, -3]], cluster_std=1.0, random_state=3)
    X[::17, 1] = np.nan  # missing values are filled, not fatal
    return X, y


@pytest.mark.parametrize("method", METHODS)
def test_each_method_finds_the_clusters(blobs, method):
    X, y = blobs
    model = ProfileClusterer(method=method, min_cluster_size=20)
    labels = model.fit_predict(X, feature_names=["a", "b", "c"])
    assert model.n_clusters_ == 3, model.scores_
    assert adjusted_rand_score(y, labels) > 0.9
    assert adjusted_rand_score(y, model.predict(X)) > 0.9


def test_auto_k_scores_descriptions_stability_and_new_profiles(blobs):
    X, y = blobs
    model = ProfileClusterer(k_range=(2, 6)).fit(X, feature_names=["views", "orders", "coupons"])
    assert set(model.scores_) == {2, 3, 4, 5, 6} and max(model.scores_, key=lambda k: model.scores_[k]["silhouette"]) == 3
    gmm = ProfileClusterer(method="gmm", k_range=(2, 5)).fit(X, feature_names=["views", "orders", "coupons"])
    assert gmm.n_clusters_ == 3 and all("bic" in s for s in gmm.scores_.values())
    described = {d.cluster: d for d in model.describe(X)}
    second = described[model.predict(np.array([[6.0, 0.0, 2.0]]))[0]]
    assert second.traits[0]["feature"] == "views" and second.traits[0]["z"] > 0 and "higher views" in second.summary
    assert sum(d.size for d in described.values()) == len(X)
    assert model.stability(X, n_boot=3)["ari_mean"] > 0.95
    with_pca = ProfileClusterer(pca=2).fit(X, feature_names=["a", "b", "c"])
    assert with_pca.pca_.n_components_ == 2 and with_pca.n_clusters_ == 3


@pytest.mark.parametrize("params, problem", [
    ({"method": "spectral"}, "method must be one of"), ({"n_clusters": 0}, "n_clusters"),
    ({"k_range": (5, 2)}, "k_range"), ({"pca": 1.5}, "pca"),
])
def test_bad_parameters_are_reported_at_fit(blobs, params, problem):
    model = ProfileClusterer(**params)   # scikit-learn style: the constructor only stores
    with pytest.raises(ValueError, match=problem):
        model.fit(blobs[0], feature_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="not fitted"):
        ProfileClusterer().predict(blobs[0])


def test_a_k_range_beyond_the_profiles_is_reported_not_a_crash(blobs):
    # Four profiles allow at most three clusters; k_range (5, 8) used to leave
    # nothing to fit and fail with "cannot unpack non-iterable NoneType".
    with pytest.raises(ValueError, match=r"k_range \(5, 8\) asks for at least 5 clusters, but 4 profiles allow at most 3"):
        ProfileClusterer(k_range=(5, 8)).fit(blobs[0][:4], feature_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """One simulated shop for every offline store."""
    return simulate(tmp_path_factory.mktemp("sim"), StoreSpec(customers=1500, days=60, seed=21))


def test_clusters_recover_the_simulated_segments(project, simulated):
    sim = simulated
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    with Engine(project, clock=SimulatedClock(now)) as engine:
        engine.ingest(sim.events_path)
        result = engine.segments.cluster(stability_boots=2)
        assert result["n_clusters"] == 4 and result["stability"]["ari_mean"] > 0.8
        # The JSON value is decoded here: ``->> '$'`` is DuckDB's, ``#>> '{}'`` PostgreSQL's.
        got = engine.sql("""SELECT i.value AS customer_id, c.value AS cluster FROM computed_traits c
                            JOIN identities i ON i.profile_id = c.profile_id AND i.kind = 'user_id'
                            WHERE c.key = 'cluster'""").to_pandas()
        got["cluster"] = got.cluster.map(json.loads)
        truth = pd.read_csv(sim.truth_path)
        joined = got.merge(truth, on="customer_id")
        ari = adjusted_rand_score(joined.segment, joined.cluster)
        assert ari >= 0.75, ari
        assert result["profiles_assigned"] > result["profiles_fitted"]      # anonymous visitors placed too
        some = joined.customer_id.iloc[0]
        assert "cluster" in engine.profile(some)["computed"]
        # New activity: compute() places profiles in the existing clusters without refitting.
        assert engine.segments.compute()["clusters"]["model_fitted_at"] == result["fitted_at"]
    out = json.loads(run_cli("segments", "cluster", "--k", "3", "--boots", "0", "--json", project=project).stdout)
    assert out["n_clusters"] == 3 and len(out["clusters"]) == 3 and out["clusters"][0]["summary"]
