"""Anonymized aggregates: counts and sums released with differential privacy,
small cells suppressed, every release paid from the project's ε budget.

- Counts get two-sided geometric noise (the discrete Laplace mechanism): with
  ε and sensitivity Δ, ``P(noise = z) ∝ exp(-ε|z|/Δ)``. It is exact on integers,
  so it avoids the floating-point attacks on a continuous Laplace sampler.
- Sums clamp each person's value to ``[lo, hi]`` first (Δ = max(|lo|, |hi|))
  and get Laplace noise of scale Δ/ε.
- A report of m cells splits its ε evenly (sequential composition: a person
  may count in every cell). A cell whose noisy count is below k is suppressed
  (k-anonymity on the released figure, decided after the noise so that the
  decision leaks nothing the noise does not cover).
- The ledger (``PrivacyBudget``) refuses a release that would take the spent ε
  past ``privacy.dp.budget``.
"""

from __future__ import annotations

import math
import secrets
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..errors import PersonableError, ValidationFailed

if TYPE_CHECKING:
    from ..clock import Clock
    from ..ports.consent import ConsentStore


class BudgetExhausted(PersonableError):
    """A release would spend more ε than the project's budget has left."""
    code = "privacy_budget_exhausted"
    status = 409


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng(secrets.randbits(128))


def geometric_noise(epsilon: float, sensitivity: float = 1.0, size: int | None = None,
                    rng: np.random.Generator | None = None) -> Any:
    """Two-sided geometric noise: the difference of two geometric draws."""
    if epsilon <= 0 or sensitivity <= 0:
        raise ValidationFailed("epsilon and sensitivity must be above 0")
    p = 1.0 - math.exp(-epsilon / sensitivity)
    g = _rng(rng)
    return g.geometric(p, size) - g.geometric(p, size)


def private_counts(counts: Mapping[str, int], epsilon: float, k: int = 0,
                   rng: np.random.Generator | None = None) -> dict[str, int | None]:
    """Each count with noise (ε split over the cells), never below 0; None where suppressed (noisy < k)."""
    if not counts:
        return {}
    share = epsilon / len(counts)
    noise = geometric_noise(share, 1.0, len(counts), rng)
    out: dict[str, int | None] = {}
    for (cell, value), z in zip(counts.items(), noise):
        noisy = max(0, int(value) + int(z))
        out[cell] = None if noisy < k else noisy
    return out


def private_sum(values: Any, lo: float, hi: float, epsilon: float, rng: np.random.Generator | None = None) -> float:
    """The sum of per-person values clamped to [lo, hi], with Laplace noise of scale max(|lo|, |hi|) / ε."""
    if hi < lo:
        raise ValidationFailed("the clamp needs lo <= hi")
    if epsilon <= 0:
        raise ValidationFailed("epsilon must be above 0")
    clamped = np.clip(np.asarray(values, dtype=float), lo, hi)
    scale = max(abs(lo), abs(hi)) / epsilon
    return float(clamped.sum() + _rng(rng).laplace(0.0, scale)) if scale else float(clamped.sum())


class PrivacyBudget:
    """The project's ε ledger: every release is written down with what it spent."""

    def __init__(self, store: "ConsentStore", clock: "Clock", budget: float):
        self.store, self.clock, self.budget = store, clock, budget

    def spent(self) -> float:
        return float(sum(r["epsilon"] for r in self.store.budget_ledger()))

    def spend(self, epsilon: float, release: str, detail: str) -> float:
        """Record ``epsilon`` spent on ``release``; the ε left. Refused past the budget."""
        if not 0 < epsilon <= self.budget:
            raise ValidationFailed(f"epsilon must be above 0 and at most the budget ({self.budget:g})")
        left: list[float] = []

        def affordable(spent: float) -> None:     # judged in the store's transaction: two releases never both pass
            remaining = self.budget - spent
            if epsilon > remaining + 1e-12:
                raise BudgetExhausted(f"this release needs ε={epsilon:g} and the project has {max(remaining, 0):g} "
                                      f"of its {self.budget:g} left (privacy.dp.budget)", left=max(remaining, 0.0))
            left.append(remaining - epsilon)

        self.store.spend_budget(self.clock.now(), release, epsilon, detail, affordable)
        return left[0]
