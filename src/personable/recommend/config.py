"""The ``recommend:`` section of personable.yaml::

    recommend:
      weights: {Product Viewed: 1, Product Added: 3, Order Completed: 5}
      lookback_days: 365
      generators: [als, ease, cooccurrence, complementary, content, same_category, trending, popularity]
      top_n: 50                  # precomputed per profile by `personable recommend train`
      retrain_hours: 24          # under `personable serve`, retrain and precompute this often (0: never)
      fallback_group: rfm_segment   # cold start: popular among profiles with the same value of this computed trait
      placements:
        home: {n: 10, max_per_category: 3, diversity: 0.3}
        cart: {n: 6, exclude_purchased: false}

A placement is a place recommendations are shown; its rules apply after
ranking: ``exclude_purchased``, ``in_stock_only``, ``max_per_category`` and
``diversity`` (maximal marginal relevance: 0 ranks by relevance alone, 1 by
novelty alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorList
from .interactions import DEFAULT_WEIGHTS

GENERATOR_NAMES = ("als", "bpr", "ease", "cooccurrence", "complementary", "content", "same_category", "trending",
                   "popularity", "recently_viewed")
DEFAULT_GENERATORS = ("als", "ease", "cooccurrence", "complementary", "content", "same_category", "trending",
                      "popularity")


@dataclass(frozen=True)
class Placement:
    n: int = 10
    exclude_purchased: bool = True
    in_stock_only: bool = True
    max_per_category: int | None = 3
    diversity: float = 0.3


@dataclass(frozen=True)
class RecommendConfig:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    lookback_days: int = 365
    generators: tuple[str, ...] = DEFAULT_GENERATORS
    top_n: int = 50
    fallback_group: str = "rfm_segment"
    placements: dict[str, Placement] = field(default_factory=lambda: {"default": Placement()})
    retrain_hours: float = 0.0       # under `personable serve`: retrain and precompute this often (0: never)


def _number(raw: Any, path: str, errors: ErrorList, default: float, low: float, high: float | None = None,
            whole: bool = False) -> Any:
    ok = not isinstance(raw, bool) and isinstance(raw, (int, float)) and raw >= low and (high is None or raw <= high)
    if ok and whole and not float(raw).is_integer():
        ok = False
    if not ok:
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        errors.add(path, f"must be a {'whole ' if whole else ''}number {span}, got {raw!r}")
        return default
    return int(raw) if whole else float(raw)


def parse_placement(raw: Any, path: str, errors: ErrorList) -> Placement:
    if raw is None:
        return Placement()
    if not isinstance(raw, dict):
        errors.add(path, "must be a mapping (n, exclude_purchased, in_stock_only, max_per_category, diversity)")
        return Placement()
    unknown = set(raw) - {"n", "exclude_purchased", "in_stock_only", "max_per_category", "diversity"}
    for key in sorted(unknown):
        errors.add(f"{path}.{key}", "unknown setting")
    d = Placement()
    flags = {}
    for key in ("exclude_purchased", "in_stock_only"):
        flags[key] = raw.get(key, getattr(d, key))
        if not isinstance(flags[key], bool):
            errors.add(f"{path}.{key}", f"must be true or false, got {flags[key]!r}")
            flags[key] = getattr(d, key)
    cap = raw.get("max_per_category", d.max_per_category)
    if cap is not None:
        cap = _number(cap, f"{path}.max_per_category", errors, 3, 1, whole=True)
    return Placement(n=_number(raw.get("n", d.n), f"{path}.n", errors, 10, 1, 200, whole=True),
                     max_per_category=cap, diversity=_number(raw.get("diversity", d.diversity), f"{path}.diversity",
                                                             errors, 0.3, 0.0, 1.0), **flags)


def parse_recommend(raw: Any, errors: ErrorList) -> RecommendConfig:
    if raw is None:
        return RecommendConfig()
    if not isinstance(raw, dict):
        errors.add("recommend", "must be a mapping (weights, lookback_days, generators, top_n, fallback_group, placements)")
        return RecommendConfig()
    known = {"weights", "lookback_days", "generators", "top_n", "fallback_group", "placements", "retrain_hours"}
    for key in sorted(set(raw) - known):
        errors.add(f"recommend.{key}", f"unknown setting; use one of {', '.join(sorted(known))}")
    d = RecommendConfig()
    weights = raw.get("weights", d.weights)
    if not isinstance(weights, dict) or not weights:
        errors.add("recommend.weights", "must map event names to positive weights")
        weights = d.weights
    else:
        weights = {str(k): _number(v, f"recommend.weights.{k}", errors, 1.0, 0.0) for k, v in weights.items()}
    generators = raw.get("generators", list(d.generators))
    if not isinstance(generators, list) or not generators:
        errors.add("recommend.generators", f"must be a list of: {', '.join(GENERATOR_NAMES)}")
        generators = list(d.generators)
    for g in generators:
        if g not in GENERATOR_NAMES:
            errors.add("recommend.generators", f"unknown generator {g!r}; use {', '.join(GENERATOR_NAMES)}")
    placements_raw = raw.get("placements") or {}
    if not isinstance(placements_raw, dict):
        errors.add("recommend.placements", "must be a mapping of placement: rules")
        placements_raw = {}
    placements = {"default": Placement()}
    placements.update({str(k): parse_placement(v, f"recommend.placements.{k}", errors) for k, v in placements_raw.items()})
    group = raw.get("fallback_group", d.fallback_group)
    if not isinstance(group, str) or not group:
        errors.add("recommend.fallback_group", "must be the name of a computed trait, e.g. rfm_segment or cluster")
        group = d.fallback_group
    return RecommendConfig(
        weights=weights,
        lookback_days=_number(raw.get("lookback_days", d.lookback_days), "recommend.lookback_days", errors, 365, 1,
                              whole=True),
        generators=tuple(g for g in generators if g in GENERATOR_NAMES),
        top_n=_number(raw.get("top_n", d.top_n), "recommend.top_n", errors, 50, 1, 500, whole=True),
        fallback_group=group, placements=placements,
        retrain_hours=_number(raw.get("retrain_hours", 0), "recommend.retrain_hours", errors, 0.0, 0.0))
