"""Candidate generators: scikit-learn estimators with ``fit(interactions, items)``
and ``recommend(history, rows, n)``, each a different reason to show an item.

- ``Popularity``: most interacted-with, optionally time-decayed (``Trending``)
  and per group (popular in the user's segment: the cold-start fallback).
- ``ALS`` / ``BPR``: collaborative filtering on implicit feedback (``implicit``).
- ``EASE``: a learned item-item model in closed form (Steck, 2019); exact and
  fast for catalogs up to ~20k items.
- ``CoOccurrence``: item-item cosine similarity of who interacted with what
  (``Complementary``, over orders only: bought together).
- ``ContentBased``: TF-IDF of item text and attributes against the items a
  user engaged with.
- ``RecentlyViewed``: the user's own recent items, newest first.
- ``SameCategory``: popular items in the categories the user engages with.

What ``fit`` learns is about items only (weights, factors, similarities,
popularity): no generator keeps the interactions it was fitted on. Whom to
score is said at predict time by ``history``, the users' own interactions
(an ``Interactions`` over the same items, from the caller or the store), as
``implicit`` recommends from ``user_items``: the user side of a factor model
is folded in from that history, an item-item model multiplies it. So a pickled
generator carries no training rows, and a user who interacted since training
is scored on what they did.

Scores are only comparable within one generator; the ranker learns how to mix
them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone

from .interactions import Interactions

CHUNK = 2048   # users scored at once: a chunk x items dense block


class Generator(BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """The common part: top-n from ``score``, and cloning (scikit-learn's).

    A scikit-learn estimator (parameters in ``__init__`` only, learned state
    ending in ``_``, ``get_params``/``set_params``/``clone``); none of
    scikit-learn's mixins fits a recommender, which scores users x items."""

    name = "generator"
    exclude_seen = True          # False for generators whose point is the user's own items

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "Generator":
        raise NotImplementedError

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        """Dense scores, len(rows) x items (higher is better), for ``rows`` of ``history``."""
        raise NotImplementedError

    def recommend(self, history: Interactions, rows: np.ndarray, n: int, exclude: sp.csr_matrix | None = None,
                  groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` item indexes and their scores per row of ``history``, best
        first; -1 pads when fewer items qualify. ``exclude``: rows of
        ``history`` x items, nonzero = never show. ``groups``: one label per
        row, for the generators that use them (popularity)."""
        rows = np.asarray(rows, dtype=np.int64)
        top = np.full((len(rows), n), -1, dtype=np.int64)
        best = np.full((len(rows), n), -np.inf)
        for start in range(0, len(rows), CHUNK):
            part = rows[start:start + CHUNK]
            labels = None if groups is None else np.asarray(groups)[start:start + CHUNK]
            scores = np.asarray(self._scores(history, part, labels), dtype=float)
            if exclude is not None:
                block = exclude[part]
                r, c = block.nonzero()
                scores[r, c] = -np.inf
            k = min(n, scores.shape[1])
            idx = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
                np.tile(np.arange(scores.shape[1]), (len(part), 1))
            vals = np.take_along_axis(scores, idx, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            idx, vals = np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)
            idx[~np.isfinite(vals)] = -1
            top[start:start + len(part), :k], best[start:start + len(part), :k] = idx, vals
        return top, best

    def _scores(self, history: Interactions, rows: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        return self.score(history, rows)

    def clone(self) -> "Generator":
        """The same parameters, nothing learned (``sklearn.base.clone``)."""
        fresh: Generator = clone(self)
        return fresh


def _seen_rows(history: Interactions, rows: np.ndarray) -> sp.csr_matrix:
    block: sp.csr_matrix = history.matrix[rows].tocsr()
    block.data = np.ones_like(block.data)
    return block


class Popularity(Generator):
    """Popular items; ``half_life_days`` decays old interactions (trending);
    ``groups`` (one label per user) gives popularity within each group, and a
    user is scored by their group's when ``score`` is told their groups."""

    name = "popularity"

    def __init__(self, half_life_days: float | None = None):
        self.half_life_days = half_life_days

    def fit(self, data: Interactions, items: pd.DataFrame | None = None, groups: np.ndarray | None = None) -> "Popularity":
        weights = data.seen()
        if self.half_life_days and data.last_seen.nnz:
            last = data.last_seen.tocoo()
            age_days = (last.data.max() - last.data) / 86400.0
            weights = sp.csr_matrix((0.5 ** (age_days / self.half_life_days), (last.row, last.col)), shape=data.shape)
        self.counts_ = np.asarray(data.seen().sum(axis=0)).ravel()
        self.global_ = np.asarray(weights.sum(axis=0)).ravel()
        self.by_group_: dict[Any, np.ndarray] = {}   # group label -> item popularity within it
        if groups is not None:
            labels = np.asarray(groups)
            for g in pd.unique(labels[pd.notna(labels)]):
                self.by_group_[g] = np.asarray(weights[labels == g].sum(axis=0)).ravel()
        return self

    def score(self, history: Interactions, rows: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """``groups``: each row's group label (None: none known)."""
        # Group popularity first, the global one breaking ties and filling thin groups.
        base = self.global_ / max(self.global_.max(), 1e-12)
        out = np.tile(base, (len(rows), 1))
        if groups is not None:
            for j, g in enumerate(np.asarray(groups)):
                if g in self.by_group_:
                    out[j] += 10.0 * self.by_group_[g] / max(self.by_group_[g].max(), 1e-12)
        return out

    def _scores(self, history: Interactions, rows: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        return self.score(history, rows, groups)


class Trending(Popularity):
    """Popularity with a one-week half-life: what is being looked at now."""

    name = "trending"

    def __init__(self, half_life_days: float | None = 7.0):
        self.half_life_days = half_life_days


def _one_blas_thread() -> AbstractContextManager[Any]:
    """implicit runs its own threads; BLAS threads inside them oversubscribe the cores (its own advice)."""
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[Any] = threadpool_limits(1, "blas")   # threadpoolctl is untyped
    return limits


def _fold_in(item_factors: np.ndarray, confidence: sp.csr_matrix, regularization: float) -> np.ndarray:
    """Each user's factors from their own interactions, the item factors held
    fixed: the least-squares step of implicit ALS (Hu, Koren, Volinsky), exact.
    ``confidence``: users x items, already scaled by alpha."""
    from implicit.cpu.als import AlternatingLeastSquares

    solver = AlternatingLeastSquares(factors=item_factors.shape[1], regularization=regularization, alpha=1.0,
                                     num_threads=1)
    solver.item_factors = item_factors.astype(np.float32)
    with _one_blas_thread():
        users: np.ndarray = np.asarray(solver.recalculate_user(np.arange(confidence.shape[0]),
                                                                 confidence.astype(np.float32).tocsr()))
    return users


class _Factors(Generator):
    """Item factors learned by fit; a user's factors are folded in from their history."""

    item_factors_: np.ndarray   # items x factors


class ALS(_Factors):
    """Alternating least squares on confidence-weighted implicit feedback (Hu, Koren, Volinsky)."""

    name = "als"

    # Defaults from a search on MovieLens-100k (docs/benchmarks.md): few factors, firm regularization.
    def __init__(self, factors: int = 16, regularization: float = 1.0, alpha: float = 2.0, iterations: int = 15,
                 random_state: int = 7):
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.random_state = iterations, random_state

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "ALS":
        from implicit.cpu.als import AlternatingLeastSquares

        with _one_blas_thread():
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                                            iterations=self.iterations, random_state=self.random_state)
            model.fit(data.matrix.astype(np.float32), show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors)
        return self

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        confidence = self.alpha * history.matrix[np.asarray(rows, dtype=np.int64)]
        scores: np.ndarray = _fold_in(self.item_factors_, confidence, self.regularization) @ self.item_factors_.T
        return scores


class BPR(_Factors):
    """Bayesian personalized ranking: pairwise, an item the user engaged with
    above one they did not. BPR has no closed-form user step, so a user is
    folded in as the mean of the factors of the items they engaged with (as
    in NSVD), plus each item's learned bias (implicit keeps it as the last
    factor). Measured on MovieLens-100k (docs/benchmarks.md) this scores
    better than the user factors BPR itself learned (nDCG@10 0.436 vs 0.292)."""

    name = "bpr"

    def __init__(self, factors: int = 200, learning_rate: float = 0.005, regularization: float = 0.001,
                 iterations: int = 200, random_state: int = 7):
        self.factors, self.learning_rate, self.regularization = factors, learning_rate, regularization
        self.iterations, self.random_state = iterations, random_state

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "BPR":
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                            regularization=self.regularization, iterations=self.iterations,
                                            random_state=self.random_state)
        with _one_blas_thread():
            model.fit(data.seen().astype(np.float32), show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors)
        return self

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        seen = _seen_rows(history, np.asarray(rows, dtype=np.int64))
        factors, bias = self.item_factors_[:, :-1], self.item_factors_[:, -1]
        users = np.asarray(seen @ factors) / np.maximum(np.asarray(seen.sum(axis=1)), 1.0)
        scores: np.ndarray = users @ factors.T + bias
        return scores


class EASE(Generator):
    """Item-item weights B minimizing ||X - XB||² + λ||B||² with diag(B) = 0, in
    closed form: B = I - P / diag(P), P = (XᵀX + λI)⁻¹."""

    name = "ease"

    def __init__(self, l2: float = 400.0, max_items: int = 20_000):
        self.l2, self.max_items = l2, max_items

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "EASE":
        if data.shape[1] > self.max_items:
            raise ValueError(f"EASE inverts an items x items matrix; {data.shape[1]:,} items is more than "
                             f"max_items={self.max_items:,} (use cooccurrence)")
        X = data.seen()
        gram = (X.T @ X).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        P = np.linalg.inv(gram)
        B = -P / np.diag(P)
        B[np.diag_indices_from(B)] = 0.0
        self.weights_ = B.astype(np.float32)
        return self

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        return np.asarray(_seen_rows(history, rows).astype(np.float32) @ self.weights_)


class CoOccurrence(Generator):
    """Item-item cosine similarity over users (or, with ``kinds``, only over
    the interactions of those kinds: ``("Order Completed",)`` = bought
    together); each item keeps its ``neighbours`` most similar."""

    name = "cooccurrence"

    def __init__(self, neighbours: int = 100, kinds: tuple[str, ...] | None = None, shrink: float = 10.0):
        self.neighbours, self.kinds, self.shrink = neighbours, kinds, shrink

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "CoOccurrence":
        X = data.seen()
        if self.kinds:
            log = data.kinds[data.kinds.kind.isin(self.kinds)]
            u = pd.Index(data.users).get_indexer(log.user.astype(str))
            i = pd.Index(data.items).get_indexer(log.item.astype(str))
            X = sp.csr_matrix((np.ones(len(log)), (u, i)), shape=data.shape)
            X.data = np.ones_like(X.data)
        norms = np.sqrt(np.asarray(X.sum(axis=0)).ravel())
        co = (X.T @ X).tocsr().astype(np.float64)
        co.setdiag(0)
        co.eliminate_zeros()
        coo = co.tocoo()
        sim = coo.data / (norms[coo.row] * norms[coo.col] + self.shrink)
        frame = pd.DataFrame({"a": coo.row, "b": coo.col, "s": sim})
        frame = frame.sort_values(["a", "s"], ascending=[True, False]).groupby("a").head(self.neighbours)
        self.similarity_ = sp.csr_matrix((frame.s, (frame.a, frame.b)), shape=(data.shape[1], data.shape[1]))
        return self

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (_seen_rows(history, rows) @ self.similarity_.T).toarray()   # scipy.sparse: Any
        return scores


class Complementary(CoOccurrence):
    """Bought together: co-occurrence over orders only (``kinds``: the order event)."""

    name = "complementary"

    def __init__(self, neighbours: int = 100, kinds: tuple[str, ...] | None = ("Order Completed",),
                 shrink: float = 10.0):
        self.neighbours, self.kinds, self.shrink = neighbours, kinds, shrink


class ContentBased(Generator):
    """TF-IDF of each item's text and attributes; a user is the weighted mean of
    the items they engaged with; scores are cosine similarities."""

    name = "content"

    def __init__(self, text_columns: tuple[str, ...] = ("name", "category", "brand", "description"),
                 max_features: int = 20_000):
        self.text_columns, self.max_features = text_columns, max_features

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "ContentBased":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize

        if items is None or items.empty:
            raise ValueError("content-based recommendations need the item catalog")
        table = items.set_index("item_id").reindex(data.items)
        cols = [c for c in self.text_columns if c in table]
        if not cols:
            raise ValueError(f"the catalog has none of the text columns {', '.join(self.text_columns)}")
        text = table[cols].fillna("").astype(str).agg(" ".join, axis=1)
        vectors = TfidfVectorizer(max_features=self.max_features, sublinear_tf=True).fit_transform(text)
        self.item_vectors_ = normalize(vectors).tocsr()
        return self

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        from sklearn.preprocessing import normalize

        users = normalize(history.matrix[rows] @ self.item_vectors_)
        scores: np.ndarray = (users @ self.item_vectors_.T).toarray()   # scipy.sparse: Any
        return scores


class RecentlyViewed(Generator):
    """The user's own items, most recent first (for "continue where you left off"):
    nothing to learn, everything from the history."""

    name = "recently_viewed"
    exclude_seen = False

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "RecentlyViewed":
        self.n_items_ = data.shape[1]
        return self

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        source = history.last_seen if history.last_seen.nnz else history.matrix
        block: np.ndarray = source[rows].toarray()   # scipy.sparse: Any to the checker
        block[block == 0] = -np.inf
        return block


class SameCategory(Generator):
    """Popular items within the categories the user engages with, in proportion
    to how much they engage with each."""

    name = "same_category"

    def __init__(self, column: str = "category"):
        self.column = column

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "SameCategory":
        if items is None or self.column not in items:
            raise ValueError(f"same-category recommendations need the catalog's {self.column!r}")
        cats = items.set_index("item_id").reindex(data.items)[self.column].fillna("").astype(str).to_numpy()
        codes, self.categories_ = pd.factorize(cats)
        self.codes_ = codes
        pop = np.asarray(data.seen().sum(axis=0)).ravel()
        self.popularity_ = pop / max(pop.max(), 1.0)
        return self

    def score(self, history: Interactions, rows: np.ndarray) -> np.ndarray:
        onehot = sp.csr_matrix((np.ones(len(self.codes_)), (np.arange(len(self.codes_)), self.codes_)),
                               shape=(len(self.codes_), len(self.categories_)))
        counts = history.matrix[rows] @ onehot
        totals = np.asarray(counts.sum(axis=1)).ravel()
        share: np.ndarray = (sp.diags(1.0 / np.maximum(totals, 1e-12)) @ counts).toarray()[:, self.codes_]   # Any
        scores: np.ndarray = share * (0.5 + 0.5 * self.popularity_)
        return scores


GENERATORS: dict[str, type[Generator]] = {
    g.name: g for g in (Popularity, Trending, ALS, BPR, EASE, CoOccurrence, Complementary, ContentBased,
                        RecentlyViewed, SameCategory)}
