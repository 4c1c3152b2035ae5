"""The models are scikit-learn estimators, and no fitted model carries its
training data.

- Estimators over a plain numeric ``X`` (and ``y``) pass scikit-learn's own
  ``parametrize_with_checks``: churn (a classifier), next purchase value (a
  regressor), the profile clusterer.
- Estimators over interaction or engagement tables (the candidate generators,
  the ranker, send time) and over per-customer purchase summaries (BG/NBD,
  Gamma-Gamma, the Bayesian BG/NBD) take inputs the generic checks cannot
  make: an ``Interactions`` (users x items with times and event kinds) and a
  catalog, a table of (profile, hour, weekday, opens, visits), or three named
  arrays with constraints between them (recency <= T). The checks feed random
  float matrices, so they do not apply; these estimators are checked for the
  contract the checks would test first: parameters only in ``__init__``,
  ``get_params``/``set_params``, ``clone`` giving an unfitted copy.
- Every fitted model, pickled, holds no array or table with a row per
  training record, and its size does not grow with the number of users or
  records it was fitted on (what it learns is per item, per feature or per
  group).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils.estimator_checks import estimator_checks_generator

from personable.predict.churn import ChurnModel
from personable.predict.clv import BetaGeoModel, GammaGammaModel
from personable.predict.next_purchase import NextPurchaseModel
from personable.predict.send_time import SendTimeModel
from personable.recommend import generators as G
from personable.recommend.interactions import Interactions
from personable.recommend.ranker import CandidateRanker
from personable.segments.clustering import ProfileClusterer


def _expected_failures(estimator: Any) -> dict[str, str]:
    if isinstance(estimator, ProfileClusterer):
        return {"check_clustering": "reads labels_, one label per training row, which this clusterer does not keep "
                                    "(no training rows in a fitted model); test_clusterer_labels_blobs checks the "
                                    "same through fit_predict"}
    return {}


NUMERIC = [ChurnModel(model="logistic", cv=2, search_iter=1), ChurnModel(cv=2, search_iter=1),
           NextPurchaseModel(model="ridge"), NextPurchaseModel(),
           ProfileClusterer(k_range=(2, 4)), ProfileClusterer(method="gmm", k_range=(2, 3))]


def _checks() -> Any:
    """scikit-learn's checks for each numeric estimator, as parametrize_with_checks
    makes them, less the array-API ones: they need SCIPY_ARRAY_API and an array
    library, and these estimators take NumPy input only (run, they only skip;
    in CI nothing may skip)."""
    for estimator in NUMERIC:
        for item in estimator_checks_generator(estimator, expected_failed_checks=_expected_failures(estimator),
                                               mark="xfail"):
            # An expected failure comes as a pytest.param with its xfail mark.
            (est, check), marks = (item.values, item.marks) if hasattr(item, "marks") else (item, ())
            name = getattr(check, "func", check).__name__
            if "array_api" not in name:
                yield pytest.param(est, check, marks=marks, id=f"{est!r}-{name}")


@pytest.mark.parametrize("estimator, check", list(_checks()))
def test_numeric_estimators_pass_the_scikit_learn_checks(estimator, check):
    check(estimator)


def test_clusterer_labels_blobs():
    """What check_clustering asserts, through fit_predict (labels_ is not kept)."""
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    X, y = make_blobs(n_samples=50, random_state=1)
    model = ProfileClusterer(n_clusters=3)
    labels = model.fit_predict(X)
    assert labels.dtype.kind == "i" and adjusted_rand_score(labels, y) > 0.4
    assert np.array_equal(labels, model.predict(X)) and not hasattr(model, "labels_")


TABLE_ESTIMATORS = [G.Popularity(half_life_days=3.0), G.Trending(), G.ALS(factors=4), G.BPR(factors=4), G.EASE(l2=5.0),
                    G.CoOccurrence(neighbours=7), G.Complementary(kinds=("Purchase",)), G.ContentBased(max_features=9),
                    G.RecentlyViewed(), G.SameCategory(column="brand"),
                    CandidateRanker([G.EASE(), G.Popularity()], candidates=9), SendTimeModel(prior_strength=2.0),
                    BetaGeoModel(penalizer=0.1), GammaGammaModel(penalizer=0.1)]


@pytest.mark.parametrize("estimator", TABLE_ESTIMATORS, ids=lambda e: type(e).__name__)
def test_table_estimators_follow_the_scikit_learn_contract(estimator):
    """Why not parametrize_with_checks: see the module's docstring (inputs are
    tables or named summaries, not a numeric matrix)."""
    params = estimator.get_params()
    fresh = clone(estimator)
    assert fresh is not estimator and fresh.get_params().keys() == params.keys()
    assert getattr(fresh, "name", None) == getattr(estimator, "name", None)   # a generator's reason survives clone
    for key, value in params.items():
        assert fresh.get_params()[key] == value or isinstance(value, list), key
    key = next(iter(params), None)
    if key is not None and isinstance(params[key], (int, float)) and not isinstance(params[key], bool):
        assert fresh.set_params(**{key: params[key] + 1}) is fresh and fresh.get_params()[key] == params[key] + 1
    assert not [k for k in vars(fresh) if k.endswith("_")]   # nothing learned before fit


def test_bayesian_bg_nbd_follows_the_contract():
    from personable.predict.bayes_clv import BayesianBetaGeo

    model = BayesianBetaGeo(draws=10, tune=10)
    fresh = clone(model).set_params(chains=1)
    assert fresh.get_params()["chains"] == 1 and fresh.get_params()["draws"] == 10


# -- no training data inside ------------------------------------------------------------------------
def _arrays(obj: Any, path: str = "model", seen: set[int] | None = None, depth: int = 0):
    """(path, shape) of every array, sparse matrix and table reachable from ``obj``'s attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 8:
        return
    seen.add(id(obj))
    if isinstance(obj, (np.ndarray, pd.DataFrame, pd.Series, pd.Index)) or sp.issparse(obj):
        yield path, obj.shape
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _arrays(v, f"{path}[{k!r}]", seen, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _arrays(v, f"{path}[{i}]", seen, depth + 1)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        for k, v in vars(obj).items():
            yield from _arrays(v, f"{path}.{k}", seen, depth + 1)


def _no_rows(model: Any, *counts: int) -> None:
    offending = [(p, s) for p, s in _arrays(model) if s and s[0] in counts]
    assert not offending, f"attributes with a row per training record: {offending}"


def _shop(users: int, seed: int = 0) -> tuple[Interactions, pd.DataFrame, pd.DataFrame]:
    """``users`` people over the same 40 items in four categories, each keen on one."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(40)],
                          "name": [f"{c} thing {i}" for i, c in enumerate(["lamp", "sofa", "mug", "rug"] * 10)],
                          "category": ["lamp", "sofa", "mug", "rug"] * 10, "brand": ["a", "b"] * 20,
                          "price": np.linspace(5, 200, 40)})
    rows = []
    for u in range(users):
        taste = u % 4
        for _ in range(rng.integers(3, 9)):
            i = int(rng.choice(np.arange(taste, 40, 4))) if rng.random() < 0.8 else int(rng.integers(40))
            rows.append((f"u{u:05d}", f"i{i:02d}", "Purchase" if rng.random() < 0.2 else "Product Viewed"))
    log = pd.DataFrame(rows, columns=["user", "item", "kind"])
    log["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 30 * 86400, len(log)), unit="s")
    data = Interactions.from_frame(log, {"Product Viewed": 1.0, "Purchase": 5.0},
                                   items=items.item_id.to_numpy())
    users_frame = pd.DataFrame({"user": data.users, "rfm_segment": [f"s{k % 3}" for k in range(len(data.users))]})
    return data, items, users_frame


def _ranker() -> CandidateRanker:
    return CandidateRanker([G.EASE(l2=10.0), G.ALS(factors=4, iterations=5), G.CoOccurrence(),
                            G.Complementary(kinds=("Purchase",)), G.ContentBased(), G.SameCategory(),
                            G.RecentlyViewed(), G.Trending(), G.Popularity()],
                           candidates=10, n_estimators=20, min_child_samples=5)


def test_a_pickled_ranker_holds_no_training_rows():
    """The pickled ranker carried its interactions, catalog and user table
    (data_, items_, users_, and the generators' user x item matrices): a
    model file was a copy of the training set, growing with every user."""
    small, items, users_small = _shop(300)
    large, _, users_large = _shop(1200, seed=1)
    fitted = {}
    for name, data, users in (("small", small, users_small), ("large", large, users_large)):
        ranker = _ranker().fit(data, items, users)
        _no_rows(ranker, data.shape[0], len(data.kinds), int(data.matrix.nnz))
        fitted[name] = ranker
    sizes = {k: len(pickle.dumps(v)) for k, v in fitted.items()}
    # Four times the users and records: what the model learns is per item, so its size stays put.
    assert sizes["large"] < 1.5 * sizes["small"], sizes
    assert sizes["large"] < len(pickle.dumps(large)), sizes
    # It still ranks whoever the caller gives it, from their own history: the first user of the large set.
    top, _ = fitted["small"].recommend(large, np.array([0]), 5, large.seen(), users=users_large)
    taste = 0 % 4   # u00000 likes category 0 (lamps)
    assert (items.category.to_numpy()[top[0]] == items.category[taste]).sum() >= 3, top


@pytest.mark.parametrize("make", [lambda: G.Popularity(), lambda: G.Trending(), lambda: G.ALS(factors=4),
                                  lambda: G.BPR(factors=4, iterations=20), lambda: G.EASE(l2=10.0),
                                  lambda: G.CoOccurrence(), lambda: G.Complementary(kinds=("Purchase",)),
                                  lambda: G.ContentBased(), lambda: G.RecentlyViewed(), lambda: G.SameCategory()],
                         ids=["popularity", "trending", "als", "bpr", "ease", "cooccurrence", "complementary",
                              "content", "recently_viewed", "same_category"])
def test_a_pickled_generator_holds_no_training_rows(make):
    small, items, _ = _shop(300)
    large, _, _ = _shop(1200, seed=1)
    sizes = []
    for data in (small, large):
        gen = make().fit(data, items)
        _no_rows(gen, data.shape[0], len(data.kinds), int(data.matrix.nnz))
        sizes.append(len(pickle.dumps(gen)))
        top, _ = gen.recommend(data, np.arange(4), 3, None if not gen.exclude_seen else data.seen())
        assert top.shape == (4, 3)
    # Item-item tables fill up as more pairs are seen, up to one entry per pair of the 40 items; never per user.
    assert sizes[1] < 1.5 * sizes[0] + 16 * 40 * 40, sizes


def _numeric(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("make", [lambda X, y: ChurnModel(cv=3, search_iter=2).fit(X, y),
                                  lambda X, y: ChurnModel(model="logistic", cv=3, search_iter=2).fit(X, y),
                                  lambda X, y: NextPurchaseModel().fit(X, np.abs(np.nan_to_num(X[:, 1]) * 10 + y) + 1),
                                  lambda X, y: NextPurchaseModel(model="ridge").fit(X, np.abs(np.nan_to_num(X[:, 1]) * 10 + y) + 1),
                                  lambda X, y: ProfileClusterer(k_range=(2, 4)).fit(X),
                                  lambda X, y: ProfileClusterer(method="agglomerative", k_range=(2, 3)).fit(X),
                                  lambda X, y: ProfileClusterer(method="dbscan", min_cluster_size=5).fit(X),
                                  lambda X, y: ProfileClusterer(method="hdbscan", min_cluster_size=10).fit(X),
                                  lambda X, y: ProfileClusterer(method="gmm", k_range=(2, 3)).fit(X)],
                         ids=["churn", "churn_logistic", "next_purchase", "next_purchase_ridge", "kmeans",
                              "agglomerative", "dbscan", "hdbscan", "gmm"])
def test_a_pickled_predictive_model_holds_no_training_rows(make):
    sizes = []
    for n in (401, 1603):
        X, y = _numeric(n, seed=n)
        model = make(X, y)
        _no_rows(model, n)
        sizes.append(len(pickle.dumps(model)))
    # LightGBM's trees and an isotonic calibration may grow a little with the data; never in proportion.
    assert sizes[1] < 2.0 * sizes[0], sizes


def test_pickled_send_time_and_lifetime_models_hold_no_training_rows():
    rng = np.random.default_rng(3)
    n = 997
    engagement = pd.DataFrame({"profile_id": [f"p{i % 211}" for i in range(n)], "hour": rng.integers(0, 24, n),
                               "weekday": rng.integers(0, 7, n), "opens": rng.integers(0, 3, n),
                               "visits": rng.integers(0, 5, n)})
    send = SendTimeModel().fit(engagement)
    _no_rows(send, n, 211)
    table = send.predict(engagement)
    assert len(table) == 211 and table.best_send_hour.between(0, 23).all()
    x = rng.poisson(2.0, n).astype(float)
    T = rng.uniform(20, 40, n)
    recency = np.where(x > 0, T * rng.uniform(0.1, 1.0, n), 0.0)
    bg = BetaGeoModel().fit(x, recency, T)
    gg = GammaGammaModel().fit(x, np.where(x > 0, rng.gamma(5.0, 10.0, n), 0.0))
    _no_rows(bg, n)
    _no_rows(gg, n)
    assert len(pickle.dumps(bg)) < 2_000 and len(pickle.dumps(gg)) < 2_000
