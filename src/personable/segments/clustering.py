"""Behavioural clusters of profiles: a scikit-learn-style estimator.

``ProfileClusterer`` takes the feature matrix (``features.py``), fills missing
values with the median, scales, optionally reduces with PCA, and fits one of
K-Means, Gaussian mixtures, agglomerative (Ward), DBSCAN or HDBSCAN. With
``n_clusters="auto"`` it tries every k in ``k_range`` and keeps the best
silhouette (BIC for mixtures); the scores are kept in ``scores_``. It
describes each cluster in words by the features that set it apart from the
population, measures its own stability (adjusted Rand index between the
clustering and refits on bootstrap samples), and assigns new profiles to the
clusters it found (methods without a ``predict``, and K-Means, use the
nearest centroid; mixtures their own ``predict``).

A scikit-learn clusterer (``BaseEstimator`` + ``ClusterMixin``) that keeps no
row of its training data: not even ``labels_``, which scikit-learn's own
clusterers keep (one per training row); ``fit_predict`` returns the labels,
``predict`` gives them for any profiles.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted, validate_data

METHODS = ("kmeans", "gmm", "agglomerative", "dbscan", "hdbscan")

# Words for features, for cluster descriptions.
LABELS = {
    "events_per_session": "events per session", "views_per_session": "product views per session",
    "sessions_per_active_day": "sessions per active day", "email_open_rate": "email open rate",
    "tenure_days": "days since first seen", "add_rate": "cart adds per product view",
    "remove_rate": "cart removals per add", "checkout_rate": "checkouts per cart add",
    "order_rate": "orders per checkout", "viewed_price_log": "price of viewed products (log)",
    "order_value_log": "order value (log)", "recency_days": "days since last activity",
    "orders_log": "orders (log)", "monetary_log": "spend (log)", "coupon_rate": "share of orders with a coupon",
    "taste_concentration": "concentration on few categories",
    "channel_organic": "share of visits from organic search", "channel_cpc": "share of visits from paid ads",
    "channel_social": "share of visits from social media", "channel_referral": "share of visits from referrals",
    "channel_email": "share of visits from email",
}


@dataclass
class ClusterDescription:
    cluster: int
    size: int
    share: float
    traits: list[dict[str, Any]]   # feature, cluster mean, population mean, z
    summary: str


class ProfileClusterer(ClusterMixin, BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """Cluster profiles by behaviour; parameters are only stored here, ``fit`` learns."""

    def __init__(self, method: str = "kmeans", n_clusters: int | str = "auto", k_range: tuple[int, int] = (2, 8),
                 pca: float | int | None = None, random_state: int = 7, sample_size: int = 20_000,
                 eps: float | None = None, min_cluster_size: int = 25):
        self.method = method
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.pca = pca
        self.random_state = random_state
        self.sample_size = sample_size
        self.eps = eps
        self.min_cluster_size = min_cluster_size

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True    # missing features are imputed by the median
        return tags

    # -- fitting -------------------------------------------------------------------------------
    def _check_params(self) -> None:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not (self.n_clusters == "auto" or (isinstance(self.n_clusters, int) and self.n_clusters >= 1)):
            problems.append(f"n_clusters must be 'auto' or a whole number of at least 1, got {self.n_clusters!r}")
        lo, hi = self.k_range
        if not (2 <= lo <= hi):
            problems.append(f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range!r}")
        if self.pca is not None and not ((isinstance(self.pca, float) and 0 < self.pca < 1)
                                         or (isinstance(self.pca, int) and self.pca >= 1)):
            problems.append(f"pca must be a share of variance in (0, 1) or a number of components, got {self.pca!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def _prepare(self, X: npt.NDArray[np.float64], fit: bool) -> npt.NDArray[np.float64]:
        from sklearn.decomposition import PCA
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        if fit:
            self.imputer_ = SimpleImputer(strategy="median", keep_empty_features=True).fit(X)
            self.scaler_ = StandardScaler().fit(self.imputer_.transform(X))
        Z: npt.NDArray[np.float64] = self.scaler_.transform(self.imputer_.transform(X))
        if fit:
            self.pca_ = PCA(self.pca, random_state=self.random_state).fit(Z) if self.pca is not None else None
        if self.pca_ is not None:
            Z = self.pca_.transform(Z)
        return Z

    def _model(self, k: int | None) -> Any:
        from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, KMeans
        from sklearn.mixture import GaussianMixture

        if self.method == "kmeans":
            return KMeans(k, n_init=10, random_state=self.random_state)
        if self.method == "gmm":
            return GaussianMixture(k, covariance_type="diag", n_init=3, random_state=self.random_state)
        if self.method == "agglomerative":
            return AgglomerativeClustering(k, linkage="ward")
        if self.method == "dbscan":
            return DBSCAN(eps=self.eps or self.eps_, min_samples=self.min_cluster_size)
        return HDBSCAN(min_cluster_size=self.min_cluster_size, copy=True)

    def _estimate_eps(self, Z: npt.NDArray[np.float64]) -> float:
        """DBSCAN's radius when none is given: the median distance to the
        ``min_cluster_size``-th nearest neighbour (a dense point's reach)."""
        from sklearn.neighbors import NearestNeighbors

        k = min(self.min_cluster_size, len(Z) - 1)
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z)
        return float(np.median(dist[:, -1]))

    def _sample(self, n: int, rng: np.random.Generator) -> npt.NDArray[np.intp]:
        return rng.choice(n, size=min(n, self.sample_size), replace=False) if n > self.sample_size else np.arange(n)

    def fit(self, X: Any, y: None = None, feature_names: list[str] | None = None) -> "ProfileClusterer":
        self._fit(X, feature_names)
        return self

    def fit_predict(self, X: Any, y: None = None, feature_names: list[str] | None = None) -> npt.NDArray[np.intp]:
        """The cluster of each row of ``X`` (-1: noise, for DBSCAN and HDBSCAN)."""
        return self._fit(X, feature_names)

    def _fit(self, X: Any, feature_names: list[str] | None) -> npt.NDArray[np.intp]:
        from sklearn.metrics import silhouette_score

        self._check_params()
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=float)
        if len(X) < 3:
            raise ValueError(f"clustering needs at least 3 profiles with features, got {len(X)} sample(s)")
        self.feature_names_ = list(feature_names) if feature_names is not None else \
            [f"x{i}" for i in range(X.shape[1])]
        Z = self._prepare(X, fit=True)
        rng = np.random.default_rng(self.random_state)
        idx = self._sample(len(Z), rng)  # agglomerative and silhouettes are quadratic: work on a sample
        fixed = self.method in ("dbscan", "hdbscan")
        self.eps_ = self.eps if self.eps is not None else (self._estimate_eps(Z[idx]) if self.method == "dbscan" else None)
        ks: list[int | None]
        if fixed:
            ks = [None]
        elif isinstance(self.n_clusters, int):   # _check_params: an int of at least 1, or "auto"
            ks = [self.n_clusters]
        else:
            ks = list(range(self.k_range[0], min(self.k_range[1], len(idx) - 1) + 1))
            if not ks:   # a silhouette needs fewer clusters than points
                raise ValueError(f"k_range {self.k_range!r} asks for at least {self.k_range[0]} clusters, "
                                 f"but {len(idx)} profiles allow at most {len(idx) - 1}")
        self.scores_: dict[int, dict[str, float]] = {}
        best: tuple[float, int | None, Any, npt.NDArray[np.integer[Any]]] | None = None
        for k in ks:
            model = self._model(k)
            labels = model.fit_predict(Z[idx]) if self.method != "gmm" else model.fit(Z[idx]).predict(Z[idx])
            found = len(set(labels) - {-1})
            score: dict[str, float] = {}
            if found >= 2:
                score["silhouette"] = float(silhouette_score(Z[idx], labels, sample_size=min(len(idx), 5_000),
                                                             random_state=self.random_state))
            if self.method == "gmm":
                score["bic"] = float(model.bic(Z[idx]))
            self.scores_[found if k is None else k] = score
            key = -score["bic"] if self.method == "gmm" else score.get("silhouette", -1.0)
            if best is None or key > best[0]:
                best = (key, k, model, labels)
        assert best is not None   # ks is never empty
        _, k, model, labels = best
        self.n_clusters_ = len(set(labels) - {-1})
        # Only a mixture is kept (its means, variances and weights): the other fitted models hold
        # a row per training profile (labels, a merge tree, core samples). K-Means assigns to the
        # nearest of its centres, the rest to the nearest centroid of their clusters.
        self.model_ = model if self.method == "gmm" else None
        self.centroids_: npt.NDArray[np.float64]
        if self.method == "kmeans":
            self.centroids_ = np.asarray(model.cluster_centers_, dtype=float)
        elif self.n_clusters_:
            self.centroids_ = np.vstack([Z[idx][labels == c].mean(axis=0) for c in sorted(set(labels) - {-1})])
        else:
            self.centroids_ = np.zeros((0, Z.shape[1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.population_mean_ = np.nanmean(X, axis=0)
            self.population_std_ = np.nanstd(X, axis=0)
        return self._assign(Z)

    def _assign(self, Z: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        if self.model_ is not None:
            return np.asarray(self.model_.predict(Z))
        if not len(self.centroids_):
            return np.full(len(Z), -1)
        d: npt.NDArray[np.float64] = ((Z[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        nearest: npt.NDArray[np.intp] = d.argmin(axis=1)   # numpy types argmin along an axis as Any
        return nearest

    def predict(self, X: Any) -> npt.NDArray[np.intp]:
        """Assign profiles to the clusters found by ``fit``."""
        check_is_fitted(self, "centroids_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=float)
        return self._assign(self._prepare(X, fit=False))

    # -- understanding -------------------------------------------------------------------------
    def describe(self, X: np.ndarray, labels: np.ndarray | None = None, top: int = 4) -> list[ClusterDescription]:
        """Each cluster in words: the features whose mean differs most from the
        population's, in population standard deviations. ``labels``: the
        clusters of ``X``'s rows (by default, ``predict(X)``)."""
        X = np.asarray(X, dtype=float)
        labels = self.predict(X) if labels is None else labels
        out = []
        for c in sorted(set(labels.tolist()) - {-1}):
            rows = X[labels == c]
            with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)  # a feature no member has: NaN, skipped below
                mean = np.nanmean(rows, axis=0)
                z = (mean - self.population_mean_) / np.where(self.population_std_ > 0, self.population_std_, np.nan)
            order = [i for i in np.argsort(-np.abs(np.nan_to_num(z))) if not np.isnan(z[i])][:top]
            traits = [{"feature": self.feature_names_[i], "mean": round(float(mean[i]), 4),
                       "population_mean": round(float(self.population_mean_[i]), 4), "z": round(float(z[i]), 2)}
                      for i in order]
            words = [f"{'higher' if t['z'] > 0 else 'lower'} {LABELS.get(t['feature'], t['feature'].replace('_', ' '))} "
                     f"({t['mean']:.3g} vs {t['population_mean']:.3g} overall)" for t in traits]
            out.append(ClusterDescription(int(c), int(len(rows)), round(len(rows) / len(X), 4), traits,
                                          "; ".join(words)))
        return out

    def stability(self, X: np.ndarray, n_boot: int = 5) -> dict[str, float]:
        """Adjusted Rand index between this clustering and refits on bootstrap
        samples (each refit labels every profile): near 1 means stable."""
        from sklearn.metrics import adjusted_rand_score

        rng = np.random.default_rng(self.random_state + 1)
        X = np.asarray(X, dtype=float)
        labels = self.predict(X)
        scores = []
        for b in range(n_boot):
            idx = rng.choice(len(X), size=len(X), replace=True)
            clone = ProfileClusterer(self.method, self.n_clusters_ if self.method not in ("dbscan", "hdbscan") else "auto",
                                     self.k_range, self.pca, self.random_state + 100 + b, self.sample_size, self.eps,
                                     self.min_cluster_size).fit(X[idx], feature_names=self.feature_names_)
            scores.append(adjusted_rand_score(labels, clone.predict(X)))
        return {"ari_mean": round(float(np.mean(scores)), 4), "ari_min": round(float(np.min(scores)), 4),
                "bootstraps": n_boot}
