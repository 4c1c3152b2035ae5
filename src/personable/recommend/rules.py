"""Business rules after ranking: what may be shown, and how varied a list is.

Filters drop what must never be shown (already purchased, out of stock);
``max_per_category`` caps each category; maximal marginal relevance (MMR)
then picks, one at a time, the candidate with the best mix of its own
relevance and its difference from what was already picked, so a top-10 is not
ten near-identical items.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Callable, Sequence

import numpy as np


def apply_rules(items: Sequence[int], scores: Sequence[float], n: int, *, exclude: Set[int] = frozenset(),
                in_stock: np.ndarray | None = None, categories: np.ndarray | None = None,
                max_per_category: int | None = None, diversity: float = 0.0,
                pairwise: Callable[[list[int]], np.ndarray] | None = None, pool_size: int = 5) -> list[int]:
    """Positions (into ``items``) of the ``n`` to show, in order. ``pairwise``
    gives the similarity matrix of a list of items (for diversity); only the
    ``pool_size * n`` most relevant allowed items compete, as MMR is meant to
    reorder the head of a list, not dig up its tail."""
    allowed = [j for j, item in enumerate(items)
               if item >= 0 and item not in exclude and (in_stock is None or bool(in_stock[item]))]
    if not allowed:
        return []
    rel = np.asarray([scores[j] for j in allowed], dtype=float)
    rel = np.where(np.isfinite(rel), rel, -np.inf)
    order = np.argsort(-rel, kind="stable")
    chosen = _select(items, allowed, rel, order[: max(pool_size * n, n)], n, categories, max_per_category, diversity,
                     pairwise)
    if len(chosen) < n and len(order) > pool_size * n:   # the caps emptied the head: let the tail in
        chosen = _select(items, allowed, rel, order, n, categories, max_per_category, diversity, pairwise)
    return chosen


def _select(items: Sequence[int], allowed: list[int], rel: np.ndarray, head: np.ndarray, n: int,
            categories: np.ndarray | None, max_per_category: int | None, diversity: float,
            pairwise: Callable[[list[int]], np.ndarray] | None) -> list[int]:
    pool = [allowed[h] for h in head]
    rel = rel[head]
    finite = np.isfinite(rel)
    if finite.any():   # relevance on [0, 1] so it mixes with similarity on the same scale
        lo, hi = rel[finite].min(), rel[finite].max()
        rel = np.where(finite, (rel - lo) / (hi - lo) if hi > lo else 1.0, 0.0)
    else:
        rel = np.ones(len(pool))
    use_mmr = diversity > 0 and pairwise is not None and len(pool) > 1
    sim = np.asarray(pairwise([items[j] for j in pool]), dtype=float) if use_mmr and pairwise is not None else None
    redundancy = np.zeros(len(pool))
    taken = np.zeros(len(pool), dtype=bool)
    per_category: dict[object, int] = {}
    chosen: list[int] = []
    while len(chosen) < n:
        value = (1 - diversity) * rel - diversity * redundancy if use_mmr and chosen else rel.copy()
        value[taken] = -np.inf
        pick = None
        for c in np.argsort(-value, kind="stable"):
            if taken[c]:
                break
            cat = categories[items[pool[c]]] if categories is not None else None
            if max_per_category is None or cat is None or per_category.get(cat, 0) < max_per_category:
                pick = int(c)
                break
        if pick is None:
            break
        taken[pick] = True
        chosen.append(pick)
        if categories is not None:
            cat = categories[items[pool[pick]]]
            per_category[cat] = per_category.get(cat, 0) + 1
        if sim is not None:
            redundancy = np.maximum(redundancy, sim[:, pick])
    return [pool[c] for c in chosen]
