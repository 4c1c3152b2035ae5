"""Offline evaluation: fit each recommender on a training split, recommend
top-k unseen items to every test user, and score the lists against what they
went on to do. A leaderboard ranks every generator and the ranker against the
popularity baseline."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from .generators import Generator
from .interactions import Interactions
from .metrics import leaderboard, ranking_metrics
from .ranker import CandidateRanker

Recommender = Generator | CandidateRanker


def evaluate_split(train: pd.DataFrame, test: pd.DataFrame, models: dict[str, Callable[[], Recommender]],
                   items: pd.DataFrame | None = None, users: pd.DataFrame | None = None, k: int = 10,
                   weights: dict[str, float] | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``train`` / ``test``: rows of user, item and weight or kind (and ts).
    ``models``: name -> a factory of an unfitted recommender. Returns each
    model's metrics and fit time, and the leaderboard."""
    item_ids = np.sort(pd.concat([train.item, test.item]).astype(str).unique())
    if items is not None and not items.empty:
        item_ids = np.union1d(item_ids, items.item_id.astype(str).to_numpy())
    data = Interactions.from_frame(train, weights, items=item_ids)
    tested = test[test.user.astype(str).isin(set(data.users))]
    rows = pd.Index(data.users).get_indexer(np.sort(tested.user.astype(str).unique()))
    cols = pd.Index(item_ids).get_indexer(tested.item.astype(str))
    held = pd.DataFrame({"row": pd.Index(data.users).get_indexer(tested.user.astype(str)), "item": cols})
    truth_by_row = held.groupby("row").item.apply(set)
    truth = [truth_by_row.get(r, set()) for r in rows]
    counts = np.asarray(data.seen().sum(axis=0)).ravel()
    seen = data.seen()
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name, make in models.items():
        if progress:
            progress(name)
        model = make()
        started = time.perf_counter()
        try:
            if isinstance(model, CandidateRanker):
                model.fit(data, items, users)
            else:
                model.fit(data, items)
        except ValueError as exc:    # e.g. content-based with no catalog text: reported, not fatal
            skipped[name] = str(exc)
            continue
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        # The users' own history (here the training split) comes from the caller: no model keeps it.
        if isinstance(model, CandidateRanker):
            top, _ = model.recommend(data, rows, k, seen, users=users)
        else:
            top, _ = model.recommend(data, rows, k, seen)
        results[name] = {**ranking_metrics(top, truth, k, counts, len(item_ids)), "fit_s": fit_s,
                         "recommend_s": time.perf_counter() - started}
        if isinstance(model, CandidateRanker):
            results[name]["explain"] = model.explain()
    return {"k": k, "train_rows": len(train), "test_rows": len(tested), "users": len(rows), "items": len(item_ids),
            "results": results, "skipped": skipped, "leaderboard": leaderboard(results, k=k)}
