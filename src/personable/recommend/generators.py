"""Candidate generators: small estimators with ``fit(interactions, items)``
and ``recommend(rows, n)``, each a different reason to show an item.

- ``Popularity``: most interacted-with, optionally time-decayed (trending) and
  per group (popular in the user's segment: the cold-start fallback).
- ``ALS`` / ``BPR``: collaborative filtering on implicit feedback (``implicit``).
- ``EASE``: a learned item-item model in closed form (Steck, 2019); exact and
  fast for catalogs up to ~20k items.
- ``CoOccurrence``: item-item cosine similarity of who interacted with what
  (``kinds=("Order Completed",)``: bought together, i.e. complementary).
- ``ContentBased``: TF-IDF of item text and attributes against the items a
  user engaged with.
- ``RecentlyViewed``: the user's own recent items, newest first.
- ``SameCategory``: popular items in the categories the user engages with.

Scores are only comparable within one generator; the ranker learns how to mix
them.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .interactions import Interactions

CHUNK = 2048   # users scored at once: a chunk x items dense block


class Generator:
    name = "generator"
    exclude_seen = True          # False for generators whose point is the user's own items

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "Generator":
        raise NotImplementedError

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Dense scores, len(rows) x items (higher is better)."""
        raise NotImplementedError

    def recommend(self, rows: np.ndarray, n: int, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` item indexes and their scores per row, best first; -1 pads
        when fewer items qualify. ``exclude``: users x items, nonzero = never show."""
        rows = np.asarray(rows, dtype=np.int64)
        top = np.full((len(rows), n), -1, dtype=np.int64)
        best = np.full((len(rows), n), -np.inf)
        for start in range(0, len(rows), CHUNK):
            part = rows[start:start + CHUNK]
            scores = np.asarray(self.score(part), dtype=float)
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

    def clone(self) -> "Generator":
        fresh = copy.copy(self)
        fresh.__dict__ = {k: v for k, v in self.__dict__.items() if not k.endswith("_")}
        return fresh


class Popularity(Generator):
    """Popular items; ``half_life_days`` decays old interactions (trending);
    ``groups`` (one label per user) gives popularity within the user's group."""

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
        self.groups_, self.by_group_ = None, {}
        if groups is not None:
            self.groups_ = np.asarray(groups)
            for g in pd.unique(self.groups_[pd.notna(self.groups_)]):
                self.by_group_[g] = np.asarray(weights[self.groups_ == g].sum(axis=0)).ravel()
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        # Group popularity first, the global one breaking ties and filling thin groups.
        base = self.global_ / max(self.global_.max(), 1e-12)
        out = np.tile(base, (len(rows), 1))
        if self.groups_ is not None:
            for j, r in enumerate(rows):
                g = self.groups_[r] if r < len(self.groups_) else None
                if g in self.by_group_:
                    out[j] += 10.0 * self.by_group_[g] / max(self.by_group_[g].max(), 1e-12)
        return out


def _one_blas_thread() -> AbstractContextManager[Any]:
    """implicit runs its own threads; BLAS threads inside them oversubscribe the cores (its own advice)."""
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[Any] = threadpool_limits(1, "blas")   # threadpoolctl is untyped
    return limits


class _Factors(Generator):
    user_factors_: np.ndarray   # users x factors, learned by fit
    item_factors_: np.ndarray   # items x factors

    def score(self, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = self.user_factors_[rows] @ self.item_factors_.T
        return scores


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
        self.user_factors_, self.item_factors_ = np.asarray(model.user_factors), np.asarray(model.item_factors)
        return self


class BPR(_Factors):
    """Bayesian personalized ranking: pairwise, an item the user engaged with above one they did not."""

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
        self.user_factors_, self.item_factors_ = np.asarray(model.user_factors), np.asarray(model.item_factors)
        return self


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
        self.weights_, self.X_ = B.astype(np.float32), X.astype(np.float32).tocsr()
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.X_[rows] @ self.weights_)


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
        self.X_ = data.seen().astype(np.float64).tocsr()
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (self.X_[rows] @ self.similarity_.T).toarray()   # scipy.sparse: Any to the checker
        return scores


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
        self.user_vectors_ = normalize(data.matrix @ self.item_vectors_).tocsr()
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (self.user_vectors_[rows] @ self.item_vectors_.T).toarray()   # scipy.sparse: Any
        return scores


class RecentlyViewed(Generator):
    """The user's own items, most recent first (for "continue where you left off")."""

    name = "recently_viewed"
    exclude_seen = False

    def fit(self, data: Interactions, items: pd.DataFrame | None = None) -> "RecentlyViewed":
        self.last_ = data.last_seen if data.last_seen.nnz else data.matrix
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        block: np.ndarray = self.last_[rows].toarray()   # scipy.sparse: Any to the checker
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
        onehot = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)),
                               shape=(len(codes), len(self.categories_)))
        share = data.matrix @ onehot
        totals = np.asarray(share.sum(axis=1)).ravel()
        self.user_share_ = sp.diags(1.0 / np.maximum(totals, 1e-12)) @ share
        self.codes_ = codes
        pop = np.asarray(data.seen().sum(axis=0)).ravel()
        self.popularity_ = pop / max(pop.max(), 1.0)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        share: np.ndarray = self.user_share_[rows].toarray()[:, self.codes_]   # scipy.sparse: Any
        scores: np.ndarray = share * (0.5 + 0.5 * self.popularity_)
        return scores


GENERATORS = {g.name: g for g in (Popularity, ALS, BPR, EASE, CoOccurrence, ContentBased, RecentlyViewed, SameCategory)}
