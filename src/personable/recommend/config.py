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

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from ..settings import Section, as_tuple

GENERATOR_NAMES = ("als", "bpr", "ease", "cooccurrence", "complementary", "content", "same_category", "trending",
                   "popularity", "recently_viewed")
DEFAULT_GENERATORS = ("als", "ease", "cooccurrence", "complementary", "content", "same_category", "trending",
                      "popularity")
DEFAULT_WEIGHTS = {"Product Viewed": 1.0, "Product Added": 3.0, "Order Completed": 5.0}
Generator = Literal[GENERATOR_NAMES]  # type: ignore[valid-type]


class Placement(Section):
    """A place recommendations are shown, and the rules applied after ranking."""

    n: Annotated[int, Field(ge=1, le=200)] = 10
    """How many items to show."""
    exclude_purchased: bool = True
    """Leave out what the customer bought (a repeat purchase is labelled 'buy again' when offered)."""
    in_stock_only: bool = True
    """Leave out items out of stock."""
    max_per_category: Annotated[int, Field(ge=1)] | None = 3
    """At most this many items of one category (null: no cap)."""
    diversity: Annotated[float, Field(ge=0, le=1)] = 0.3
    """Maximal marginal relevance: 0 ranks by relevance alone, 1 by novelty alone."""


class RecommendConfig(Section):
    """Recommendations (docs/recommendations.md)."""

    weights: Annotated[dict[str, Annotated[float, Field(ge=0)]], Field(min_length=1)] = dict(DEFAULT_WEIGHTS)
    """Event name: confidence of that interaction."""
    lookback_days: Annotated[int, Field(ge=1)] = 365
    """Interactions older than this are not learned from."""
    generators: Annotated[tuple[Generator, ...], BeforeValidator(as_tuple), Field(min_length=1)] = DEFAULT_GENERATORS
    """Candidate generators the ranker merges."""
    top_n: Annotated[int, Field(ge=1, le=500)] = 50
    """Recommendations precomputed per profile by `personable recommend train`."""
    fallback_group: Annotated[str, Field(min_length=1)] = "rfm_segment"
    """Cold start: popular among profiles with the same value of this computed trait, e.g. rfm_segment or cluster."""
    placements: dict[str, Placement] = {"default": Placement()}
    """Placement name: its rules (a 'default' placement always exists)."""
    retrain_hours: Annotated[float, Field(ge=0)] = 0.0
    """Under `personable serve`, retrain and precompute this often (0: only by `recommend train`)."""

    @field_validator("placements", mode="before")
    @classmethod
    def _with_default(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        # `home:` with nothing under it: the default rules.
        return {"default": {}, **{k: {} if v is None else v for k, v in value.items()}}
