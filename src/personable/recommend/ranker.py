"""The learned ranker: candidates from every generator, scored together by
LightGBM LambdaRank with what is known about the user, the item and the moment.

Training (two stages, so the ranker learns from generators that did not see
its labels): each user's interactions are split -- the latest ``holdout``
share (or a random one) becomes labels, the rest trains clones of the
generators; their candidates for each user, with features, are labelled by
the held-out interactions (graded by strength: a purchase outranks a view) and
LambdaRank learns to order them. The generators are then refitted on
everything for serving.

Features of a (user, item) candidate: every generator's score for it and its
rank in that generator's list; the item's popularity and attributes; the
user's activity and attributes (segments, scores, demographics); the request's
context (device, channel, hour, weekday, location), which at training time is
the context of the held-out interactions.

A scikit-learn estimator (``BaseEstimator``: parameters in ``__init__``,
learned state in ``_`` attributes, ``clone``-able) that keeps no training
data: it learns the LightGBM model, the fitted generators (item-side state
only), each item's popularity and attribute features; whom to rank comes at
predict time as ``history`` (their interactions), with their attributes
(``users``) and the request's ``context``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sklearn.base import BaseEstimator, clone

from .generators import CHUNK, Generator
from .interactions import Interactions


def holdout_split(data: Interactions, share: float, how: str, seed: int) -> tuple[Interactions, sp.csr_matrix]:
    """Per user: (what the generators see, what they must find). Users with a
    single interaction keep it for fitting."""
    coo = data.matrix.tocoo()
    frame = pd.DataFrame({"u": coo.row, "i": coo.col, "w": coo.data})
    if how == "temporal" and data.last_seen.nnz:
        last = data.last_seen.tocsr()
        frame["t"] = np.asarray(last[frame.u.to_numpy(), frame.i.to_numpy()]).ravel()
        frame = frame.sort_values(["u", "t"], kind="stable")
    elif how in ("random", "temporal"):
        frame = frame.sample(frac=1.0, random_state=seed).sort_values("u", kind="stable")
    else:
        raise ValueError(f"holdout split must be random or temporal, got {how!r}")
    position = frame.groupby("u").cumcount()
    size = frame.groupby("u").u.transform("size")
    label = (position >= np.round((1 - share) * size)) & (size > 1)
    keep, held = frame[~label], frame[label]
    fit = sp.csr_matrix((keep.w, (keep.u, keep.i)), shape=data.shape)
    if data.last_seen.nnz:
        last = data.last_seen.tocsr()
        stamps = np.asarray(last[keep.u.to_numpy(), keep.i.to_numpy()]).ravel()
        fit_last = sp.csr_matrix((stamps, (keep.u, keep.i)), shape=data.shape)
    else:
        fit_last = sp.csr_matrix(data.shape)
    pairs = set(zip(keep.u.tolist(), keep.i.tolist()))
    kinds = data.kinds
    if not kinds.empty:
        u = pd.Index(data.users).get_indexer(kinds.user.astype(str))
        i = pd.Index(data.items).get_indexer(kinds.item.astype(str))
        kinds = kinds[[p in pairs for p in zip(u.tolist(), i.tolist())]]
    labels = sp.csr_matrix((held.w, (held.u, held.i)), shape=data.shape)
    return Interactions(data.users, data.items, fit.tocsr(), fit_last.tocsr(), kinds), labels


MAX_CATEGORIES = 64
TEXT_COLUMNS = ("name", "description")    # free text: for the content generator, not for trees


def _frame_features(frame: pd.DataFrame | None, index: np.ndarray, key: str, prefix: str) -> pd.DataFrame:
    """Attribute columns for the given keys, categoricals as pandas categories."""
    if frame is None or frame.empty:
        return pd.DataFrame(index=range(len(index)))
    table = frame.set_index(key).reindex(index)
    out = {}
    for col in table.columns:
        values = table[col]
        if pd.api.types.is_numeric_dtype(values):
            out[f"{prefix}{col}"] = values.astype(float).to_numpy()
        elif values.nunique() <= MAX_CATEGORIES:   # a free-text or id-like column would only be memorized
            out[f"{prefix}{col}"] = pd.Categorical(values.astype("string").fillna("?"))
    return pd.DataFrame(out)


class CandidateRanker(BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """Candidates from ``generators``, ordered by LightGBM LambdaRank (see the module's docstring)."""

    # Small trees, many samples per leaf: a few thousand queries overfit bigger ones (measured on
    # MovieLens-100k: 31 leaves 0.450 nDCG@10, 7 leaves 0.483).
    def __init__(self, generators: list[Generator], candidates: int = 50, holdout: float = 0.25,
                 split: str = "random", n_estimators: int = 100, learning_rate: float = 0.05, num_leaves: int = 7,
                 min_child_samples: int = 100, random_state: int = 7):
        self.generators = generators
        self.candidates = candidates
        self.holdout, self.split = holdout, split
        self.n_estimators, self.learning_rate, self.num_leaves = n_estimators, learning_rate, num_leaves
        self.min_child_samples, self.random_state = min_child_samples, random_state

    # -- candidates and their features ----------------------------------------------------------
    def _candidates(self, gens: list[Generator], history: Interactions, rows: np.ndarray,
                    exclude: sp.csr_matrix | None) -> pd.DataFrame:
        """(row, item) pairs any generator proposes, with every generator's score and rank."""
        seen = history.seen()
        lists = []
        for g in gens:
            ex = exclude if exclude is not None else (seen if g.exclude_seen else None)
            top, _ = g.recommend(history, rows, self.candidates, ex)
            r = np.repeat(rows, top.shape[1])
            rank = np.tile(np.arange(1, top.shape[1] + 1), len(rows))
            ok = top.ravel() >= 0
            lists.append(pd.DataFrame({"row": r[ok], "item": top.ravel()[ok], f"rank_{g.name}": rank[ok]}))
        cand = lists[0]
        for part in lists[1:]:
            cand = cand.merge(part, on=["row", "item"], how="outer")
        for g in gens:
            cand[f"rank_{g.name}"] = cand[f"rank_{g.name}"].fillna(self.candidates + 1)
        cand = cand.sort_values(["row", "item"], kind="stable").reset_index(drop=True)
        # Every generator's exact score for every candidate, not only those in its list.
        for g in gens:
            values = np.empty(len(cand))
            row_values = cand.row.to_numpy()
            item_values = cand.item.to_numpy()
            for start in range(0, len(rows), CHUNK):
                part = rows[start:start + CHUNK]
                scores = np.asarray(g.score(history, part), dtype=float)
                local = pd.Index(part).get_indexer(row_values)
                mask = local >= 0
                values[mask] = scores[local[mask], item_values[mask]]
            values[~np.isfinite(values)] = np.nan
            # Relative to the user's best candidate: the generators' scales differ between the
            # training stage (fitted on less data) and serving; the order within a user does not.
            best = pd.Series(values).groupby(row_values).transform("max").to_numpy()
            worst = pd.Series(values).groupby(row_values).transform("min").to_numpy()
            cand[f"score_{g.name}"] = (values - worst) / np.where(best > worst, best - worst, 1.0)
        return cand

    @staticmethod
    def _item_features(data: Interactions, items: pd.DataFrame | None) -> pd.DataFrame:
        """Per item (by column index): its log popularity and catalog attributes."""
        pop = np.asarray(data.seen().sum(axis=0)).ravel()
        parts = [pd.DataFrame({"item_popularity": np.log1p(pop)})]
        if items is not None and not items.empty:
            parts.append(_frame_features(items.drop(columns=[c for c in TEXT_COLUMNS if c in items]),
                                         data.items, "item_id", "item_"))
        return pd.concat(parts, axis=1)

    def _features(self, cand: pd.DataFrame, history: Interactions, item_features: pd.DataFrame,
                  users: pd.DataFrame | None, context: pd.DataFrame | None) -> pd.DataFrame:
        activity = np.asarray(history.seen().sum(axis=1)).ravel()
        per_item = item_features.iloc[cand.item.to_numpy()].reset_index(drop=True)
        parts = [cand.drop(columns=["row", "item"]).reset_index(drop=True),
                 pd.DataFrame({"item_popularity": per_item.pop("item_popularity"),
                               "user_activity": np.log1p(activity[cand.row.to_numpy()])}), per_item]
        if users is not None and not users.empty:
            parts.append(_frame_features(users, history.users[cand.row.to_numpy()], "user", "user_"))
        if context is not None and not context.empty:
            parts.append(_frame_features(context, history.users[cand.row.to_numpy()], "user", "ctx_"))
        X = pd.concat(parts, axis=1)
        if hasattr(self, "columns_"):
            for col in self.columns_:
                if col not in X:
                    X[col] = np.nan
            X = X[self.columns_]
            for col, cats in self.categories_.items():
                X[col] = pd.Categorical(X[col].astype("string").fillna("?"), categories=cats)
        return X

    # -- fit / recommend ------------------------------------------------------------------------------
    def fit(self, data: Interactions, items: pd.DataFrame | None = None, users: pd.DataFrame | None = None,
            context: pd.DataFrame | None = None) -> "CandidateRanker":
        """``users``: attributes per user (column ``user``); ``context``: the
        context of each user's held-out interactions (column ``user``)."""
        import lightgbm as lgb

        if not self.generators:
            raise ValueError("the ranker needs at least one candidate generator")
        fit_part, labels = holdout_split(data, self.holdout, self.split, self.random_state)
        # A generator that cannot work on this data (no catalog text; too many items for EASE) is left out, said so.
        stage_one, kept, self.skipped_ = [], [], {}
        for g in self.generators:
            try:
                stage_one.append(clone(g).fit(fit_part, items))
                kept.append(g)
            except ValueError as exc:
                self.skipped_[g.name] = str(exc)
        if not kept:
            raise ValueError("no candidate generator could be fitted: " + "; ".join(self.skipped_.values()))
        rows = np.unique(labels.tocoo().row)
        cand = self._candidates(stage_one, fit_part, rows, None)
        gain = np.asarray(labels[cand.row.to_numpy(), cand.item.to_numpy()]).ravel()
        cand_y = np.minimum(np.round(gain), 30).astype(int)
        has_positive = pd.Series(cand_y > 0).groupby(cand.row.to_numpy()).transform("any").to_numpy()
        cand, cand_y = cand[has_positive].reset_index(drop=True), cand_y[has_positive]
        if not len(cand):
            raise ValueError("no held-out interaction was found among the candidates; nothing to learn from")
        X = self._features(cand, fit_part, self._item_features(fit_part, items), users, context)
        self.columns_ = list(X.columns)
        self.categories_ = {c: X[c].cat.categories for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)}
        groups = cand.groupby("row", sort=False).size().to_numpy()
        self.model_ = lgb.LGBMRanker(objective="lambdarank", n_estimators=self.n_estimators,
                                     learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                                     min_child_samples=self.min_child_samples, random_state=self.random_state,
                                     verbose=-1, n_jobs=2)
        self.model_.fit(X, cand_y, group=groups)
        self.recall_ = float((cand_y > 0).sum() / max(labels.nnz, 1))   # how many held-out items the candidates caught
        self.generators_ = [clone(g).fit(data, items) for g in kept]
        # What serving needs of the training data, per item: ids (to check a history's columns), features.
        self.item_ids_ = np.asarray(data.items)
        self.item_features_ = self._item_features(data, items)
        return self

    def rank(self, history: Interactions, rows: np.ndarray, exclude: sp.csr_matrix | None = None,
             context: pd.DataFrame | None = None, users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Every candidate for ``rows`` of ``history`` (their interactions, over
        the items the ranker was fitted on) with its ranker score and each
        generator's rank (columns row, item, score). ``users``: their attributes
        (column ``user``), ``context``: the request's (column ``user``)."""
        if not hasattr(self, "model_"):
            raise ValueError("this CandidateRanker is not fitted yet; call fit first")
        if not np.array_equal(history.items, self.item_ids_):
            raise ValueError(f"the history's {history.shape[1]:,} items are not the {len(self.item_ids_):,} "
                             "the ranker was fitted on")
        rows = np.asarray(rows, dtype=np.int64)
        cand = self._candidates(self.generators_, history, rows, exclude)
        cand["score"] = self.model_.predict(self._features(cand, history, self.item_features_, users, context))
        return cand.sort_values(["row", "score"], ascending=[True, False], kind="stable")

    def recommend(self, history: Interactions, rows: np.ndarray, n: int, exclude: sp.csr_matrix | None = None,
                  context: pd.DataFrame | None = None,
                  users: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        ranked = self.rank(history, rows, exclude, context, users).groupby("row", sort=False).head(n)
        top = np.full((len(rows), n), -1, dtype=np.int64)
        best = np.full((len(rows), n), -np.inf)
        where = {r: j for j, r in enumerate(rows)}
        for r, group in ranked.groupby("row", sort=False):
            j = where[r]
            top[j, :len(group)], best[j, :len(group)] = group.item.to_numpy(), group.score.to_numpy()
        return top, best

    def explain(self) -> dict[str, Any]:
        gain = self.model_.booster_.feature_importance(importance_type="gain")
        order = np.argsort(-gain)
        return {"candidate_recall": self.recall_,
                "importance": {self.columns_[i]: float(gain[i]) for i in order[:15]}}
