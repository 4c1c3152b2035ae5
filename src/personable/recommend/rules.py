"""Business rules after ranking: what may be shown, and how varied a list is.

Filters drop what must never be shown (already purchased, out of stock);
``max_per_category`` caps each category; maximal marginal relevance (MMR)
then picks, one at a time, the candidate with the best mix of its own
relevance and its difference from what was already picked, so a top-10 is not
ten near-identical items.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def apply_rules(items: Sequence[int], scores: Sequence[float], n: int, *, exclude: set[int] = frozenset(),
                in_stock: np.ndarray | None = None, categories: np.ndarray | None = None,
                max_per_category: int | None = None, diversity: float = 0.0,
                similarity: Callable[[int, list[int]], np.ndarray] | None = None) -> list[int]:
    """Positions (into ``items``) of the ``n`` to show, in order."""
    pool = [j for j, item in enumerate(items)
            if item >= 0 and item not in exclude and (in_stock is None or bool(in_stock[item]))]
    if not pool:
        return []
    rel = np.asarray([scores[j] for j in pool], dtype=float)
    finite = np.isfinite(rel)
    if finite.any():   # relevance on [0, 1] so it mixes with similarity on the same scale
        lo, hi = rel[finite].min(), rel[finite].max()
        rel = np.where(finite, (rel - lo) / (hi - lo) if hi > lo else 1.0, 0.0)
    else:
        rel = np.ones(len(pool))
    chosen: list[int] = []
    per_category: dict[object, int] = {}
    left = list(range(len(pool)))
    while left and len(chosen) < n:
        if diversity > 0 and chosen and similarity is not None:
            picked = [items[pool[c]] for c in chosen]
            candidates = [items[pool[c]] for c in left]
            redundancy = np.array([similarity(item, picked).max() for item in candidates])
            value = (1 - diversity) * rel[left] - diversity * redundancy
        else:
            value = rel[left]
        order = np.argsort(-value, kind="stable")
        taken = None
        for o in order:
            c = left[o]
            cat = categories[items[pool[c]]] if categories is not None else None
            if max_per_category is None or cat is None or per_category.get(cat, 0) < max_per_category:
                taken = o
                break
        if taken is None:
            break
        c = left.pop(int(taken))
        chosen.append(c)
        if categories is not None:
            cat = categories[items[pool[c]]]
            per_category[cat] = per_category.get(cat, 0) + 1
    return [pool[c] for c in chosen]
