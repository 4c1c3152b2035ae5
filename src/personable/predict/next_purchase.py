"""Next purchase value: what a customer's next order will be worth, learned
from point-in-time features (``features.py``) and the first order after the
cutoff, and judged against a naive baseline (the customer's own average order
value so far, else the population's)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from ..tables import PROFILE_EVENTS as EVENTS
from .features import ORDER


def next_order_value(cutoff: datetime, horizon_days: int, order_event: str = ORDER) -> ir.Table:
    """Per profile, the value of its first order in [cutoff, cutoff + horizon)."""
    e = EVENTS
    end = cutoff + timedelta(days=horizon_days)
    o = e.filter((e.type == "track") & (e.event == order_event) & (e.timestamp >= ibis.literal(cutoff))
                 & (e.timestamp < ibis.literal(end)))
    return o.group_by("profile_id").aggregate(next_order_value=o.revenue_reporting.argmin(o.timestamp))


class NextPurchaseModel:
    def __init__(self, model: str = "lightgbm", random_state: int = 7):
        self.model = model
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, feature_names: list[str]) -> "NextPurchaseModel":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        if self.model not in ("lightgbm", "ridge"):
            raise ValueError(f"model must be lightgbm or ridge, got {self.model!r}")
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        if len(y) < 10:
            raise ValueError(f"needs at least 10 customers with a next order, got {len(y)}")
        self.feature_names_ = list(feature_names)
        if self.model == "ridge":
            self.estimator_ = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()),
                                        ("model", Ridge(alpha=1.0))]).fit(X, y)
        else:
            import lightgbm as lgb

            self.estimator_ = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                        ("model", lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, num_leaves=15,
                                                                    objective="l1", random_state=self.random_state,
                                                                    verbose=-1, n_jobs=1))]).fit(X, y)
        self.population_mean_ = float(np.mean(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise ValueError("this NextPurchaseModel is not fitted yet; call fit first")
        value: np.ndarray = np.maximum(self.estimator_.predict(np.asarray(X, dtype=float)), 0.0)   # sklearn: Any
        return value

    def naive(self, X: np.ndarray) -> np.ndarray:
        """The baseline: the customer's average order value so far, else the population's."""
        aov = np.asarray(X, dtype=float)[:, self.feature_names_.index("avg_order_value")]
        return np.where(np.isnan(aov), self.population_mean_, aov)

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        y = np.asarray(y, dtype=float)
        out: dict[str, Any] = {}
        for name, pred in (("model", self.predict(X)), ("naive", self.naive(X))):
            err = pred - y
            out[name] = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2)))}
        out["n"] = int(len(y))
        return out
