"""Top-k ranking metrics, splits and the leaderboard.

The metrics follow the definitions of Microsoft Recommenders'
``python_evaluation`` (the table issue 6 compares against): binary relevance,
averaged over every user with held-out items; precision@k = hits / k;
recall@k = hits / relevant; nDCG@k with the ideal over min(relevant, k)
positions; ``map`` normalises each user's sum of precisions at the hits by the
number of relevant items (the "MAP" column of their table), ``map_at_k`` by
min(relevant, k).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def ranking_metrics(top: np.ndarray, truth: list[set[int]], k: int = 10, item_counts: np.ndarray | None = None,
                    n_items: int | None = None) -> dict[str, float]:
    """``top``: users x >=k recommended item indexes (best first); ``truth``:
    each user's held-out items. Users with nothing held out are skipped.
    ``item_counts`` (training popularity) gives novelty; ``n_items`` coverage."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, prec, rec, ap, ap_k, hit = [], [], [], [], [], []
    for row, relevant in zip(top[:, :k], truth):
        if not relevant:
            continue
        hits = np.fromiter((i in relevant for i in row), bool, count=len(row))
        n_rel = len(relevant)
        ideal = discount[: min(n_rel, k)].sum()
        ndcg.append(float((hits * discount[: len(row)]).sum() / ideal))
        prec.append(hits.sum() / k)
        rec.append(hits.sum() / n_rel)
        precision_at_hits = (np.cumsum(hits) / np.arange(1, len(row) + 1))[hits].sum()
        ap.append(precision_at_hits / n_rel)
        ap_k.append(precision_at_hits / min(n_rel, k))
        hit.append(float(hits.any()))
    out = {"users": len(ndcg), f"ndcg@{k}": float(np.mean(ndcg)), f"precision@{k}": float(np.mean(prec)),
           f"recall@{k}": float(np.mean(rec)), "map": float(np.mean(ap)), f"map@{k}": float(np.mean(ap_k)),
           f"hit_rate@{k}": float(np.mean(hit))}
    shown = top[:, :k].ravel()
    shown = shown[shown >= 0]
    if n_items:
        out["coverage"] = float(len(np.unique(shown)) / n_items)
    if item_counts is not None and len(shown):
        # Novelty: mean self-information of what is shown, -log2 of an item's share of users.
        share = np.maximum(item_counts[shown], 1) / max(item_counts.max(), 1)
        out["novelty"] = float(np.mean(-np.log2(share)))
    return out


def stratified_split(frame: pd.DataFrame, ratio: float = 0.75, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, a random ``ratio`` of their rows to train and the rest to
    test (the protocol of the published MovieLens table)."""
    shuffled = frame.sample(frac=1.0, random_state=seed)
    position = shuffled.groupby("user").cumcount()
    size = shuffled.groupby("user").user.transform("size")
    in_train = position < np.round(ratio * size)
    return shuffled[in_train].sort_index(), shuffled[~in_train].sort_index()


def temporal_split(frame: pd.DataFrame, ratio: float = 0.75) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the earliest ``ratio`` of their rows to train, the latest to
    test: the future is never used to predict the past."""
    ordered = frame.sort_values("ts", kind="stable")
    position = ordered.groupby("user").cumcount()
    size = ordered.groupby("user").user.transform("size")
    in_train = position < np.round(ratio * size)
    return ordered[in_train], ordered[~in_train]


def leaderboard(results: dict[str, dict[str, Any]], baseline: str = "popularity", k: int = 10) -> list[dict[str, Any]]:
    """Rows sorted by nDCG@k, each with its lift over the baseline."""
    base = results.get(baseline, {}).get(f"ndcg@{k}")
    rows = []
    for name, r in results.items():
        row = {"model": name, **r}
        if base:
            row["ndcg_lift"] = r[f"ndcg@{k}"] / base - 1.0
        rows.append(row)
    return sorted(rows, key=lambda r: -r[f"ndcg@{k}"])
