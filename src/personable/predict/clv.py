"""Customer lifetime value: BG/NBD (purchase counts, P(alive)) and Gamma-Gamma
(spend per purchase), fitted by maximum likelihood with scipy.

A small implementation of our own (lifetimes is unmaintained; pymc-marketing is
heavy), written after Fader, Hardie & Lee, "Counting your customers the easy
way" (2005) and "RFM and CLV: using iso-value curves" (2005). Estimators follow
scikit-learn: the constructor stores parameters, ``fit`` learns, learned values
end in ``_``. Time is in whatever unit ``recency`` and ``T`` use (weeks for
CDNOW).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import optimize, special
from sklearn.base import BaseEstimator

Floats = npt.NDArray[np.float64]


def _arrays(*values: npt.ArrayLike) -> list[Floats]:
    return [np.asarray(v, dtype=float) for v in values]


class BetaGeoModel(BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """BG/NBD: while alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha);
    after each purchase they drop out with probability p ~ Beta(a, b).

    A scikit-learn estimator over three per-customer arrays (no mixin: it is
    neither a classifier nor a regressor of a feature matrix)."""

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    @staticmethod
    def _loglik(params: Floats, x: Floats, t_x: Floats, T: Floats) -> Floats:
        r, alpha, a, b = params
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
        loglik: Floats = a1 + a2 + np.logaddexp(a3, a4)   # scipy.special is typed as returning Any
        return loglik

    def fit(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> "BetaGeoModel":
        x, t_x, T = _arrays(frequency, recency, T)
        if len(x) == 0 or np.any(x < 0) or np.any(t_x > T) or np.any((x > 0) & (t_x <= 0)):
            raise ValueError("frequency must be >= 0, recency <= T, and recency > 0 for repeat buyers")

        def objective(log_params: Floats) -> float:
            params = np.exp(log_params)
            return float(-(self._loglik(params, x, t_x, T).sum()) + self.penalizer * np.sum(params ** 2))

        result = optimize.minimize(objective, np.zeros(4), method="Nelder-Mead",
                                   options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20_000, "maxfev": 40_000})
        result = optimize.minimize(objective, result.x, method="L-BFGS-B")  # polish
        self.r_, self.alpha_, self.a_, self.b_ = np.exp(result.x)
        self.log_likelihood_ = float(self._loglik(np.exp(result.x), x, t_x, T).sum())
        self.n_customers_ = len(x)
        return self

    @property
    def params_(self) -> dict[str, float]:
        return {"r": float(self.r_), "alpha": float(self.alpha_), "a": float(self.a_), "b": float(self.b_)}

    def p_alive(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> Floats:
        """Probability the customer has not dropped out by T."""
        x, t_x, T = _arrays(frequency, recency, T)
        return bg_p_alive(x, t_x, T, self.r_, self.alpha_, self.a_, self.b_)

    def expected_purchases(self, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike,
                           T: npt.ArrayLike) -> Floats:
        """Expected purchases in the next ``t`` time units, given the history."""
        x, t_x, T = _arrays(frequency, recency, T)
        return bg_expected_purchases(np.asarray(t, dtype=float), x, t_x, T, self.r_, self.alpha_, self.a_, self.b_)


Params = float | Floats   # one value, or one per posterior draw (broadcast against the customers)


def bg_p_alive(x: Floats, t_x: Floats, T: Floats, r: Params, alpha: Params, a: Params, b: Params) -> Floats:
    """BG/NBD P(alive) for customers (x, t_x, T) under parameters (r, alpha, a, b)."""
    alive: Floats = 1.0 / (1.0 + _dropout_odds(x, t_x, T, r, alpha, a, b))
    return alive


def bg_expected_purchases(t: Floats, x: Floats, t_x: Floats, T: Floats, r: Params, alpha: Params, a: Params,
                          b: Params) -> Floats:
    """BG/NBD expected purchases in the next ``t``, given each customer's history."""
    # ((alpha + T) / (alpha + T + t)) ** (r + x) * 2F1(r + x, b + x; a + b + x - 1; z) after Euler's
    # transformation: the direct form overflows (inf * 0) for frequent buyers, this one stays bounded.
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    numerator = (a + b + x - 1) / (a - 1) * (1 - (1 - z) ** (a - 1) * hyp)
    expected: Floats = numerator / (1.0 + _dropout_odds(x, t_x, T, r, alpha, a, b))   # hyp2f1: Any
    return expected


def _dropout_odds(x: Floats, t_x: Floats, T: Floats, r: Params, alpha: Params, a: Params, b: Params) -> Floats:
    """Odds that a repeat buyer has dropped out, a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x),
    computed in logs: a long silence after many purchases overflows the power to inf (and inf / inf made
    the expected purchases NaN); capped where exp would overflow, which only says "certainly gone"."""
    safe_x = np.where(x > 0, x, 1.0)
    log_odds = (np.log(a) - np.log(np.maximum(b + safe_x - 1, 1e-300))
                + (r + safe_x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)


class GammaGammaModel(BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """Spend per purchase: each customer's mean spend ~ Gamma(p, nu), nu ~ Gamma(q, gamma);
    fitted on repeat buyers (frequency > 0) with their average spend. A
    scikit-learn estimator over per-customer arrays, like ``BetaGeoModel``."""

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    @staticmethod
    def _loglik(params: Floats, x: Floats, m: Floats) -> Floats:
        p, q, v = params
        loglik: Floats = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
                + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))
        return loglik   # typed here: scipy.special is typed as returning Any

    def fit(self, frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> "GammaGammaModel":
        x, m = _arrays(frequency, monetary)
        keep = (x > 0) & (m > 0)
        x, m = x[keep], m[keep]
        if len(x) < 3:
            raise ValueError("Gamma-Gamma needs at least 3 repeat buyers with a positive average spend")

        def objective(log_params: Floats) -> float:
            params = np.exp(log_params)
            return float(-(self._loglik(params, x, m).sum()) + self.penalizer * np.sum(params ** 2))

        result = optimize.minimize(objective, np.zeros(3), method="Nelder-Mead",
                                   options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20_000, "maxfev": 40_000})
        result = optimize.minimize(objective, result.x, method="L-BFGS-B")
        self.p_, self.q_, self.v_ = np.exp(result.x)
        self.log_likelihood_ = float(self._loglik(np.exp(result.x), x, m).sum())
        self.n_customers_ = len(x)
        return self

    @property
    def params_(self) -> dict[str, float]:
        return {"p": float(self.p_), "q": float(self.q_), "gamma": float(self.v_)}

    def expected_average_value(self, frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> Floats:
        """Expected spend per future purchase; the population mean for non-repeat buyers."""
        x, m = _arrays(frequency, monetary)
        p, q, v = self.p_, self.q_, self.v_
        population = p * v / (q - 1)
        conditional = p * (v + x * m) / (p * x + q - 1)
        value: Floats = np.where(x > 0, conditional, population)
        return value


def customer_lifetime_value(bg: BetaGeoModel, gg: GammaGammaModel, frequency: npt.ArrayLike,
                            recency: npt.ArrayLike, T: npt.ArrayLike, monetary: npt.ArrayLike,
                            months: int = 12, monthly_discount: float = 0.01,
                            units_per_month: float = 4.345) -> Floats:
    """Discounted value of the next ``months``: expected purchases in each month
    times the expected spend per purchase, discounted monthly."""
    x, t_x, T_ = _arrays(frequency, recency, T)
    value = gg.expected_average_value(x, monetary)
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for month in range(1, months + 1):
        cumulative = bg.expected_purchases(month * units_per_month, x, t_x, T_)
        total += (cumulative - previous) * value / (1 + monthly_discount) ** month
        previous = cumulative
    return total
