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
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..tables import PROFILE_EVENTS as EVENTS
from .features import ORDER


def next_order_value(cutoff: datetime, horizon_days: int, order_event: str = ORDER) -> ir.Table:
    """Per profile, the value of its first order in [cutoff, cutoff + horizon)."""
    e = EVENTS
    end = cutoff + timedelta(days=horizon_days)
    o = e.filter((e.type == "track") & (e.event == order_event) & (e.timestamp >= ibis.literal(cutoff))
                 & (e.timestamp < ibis.literal(end)))
    return o.group_by("profile_id").aggregate(next_order_value=o.revenue_reporting.argmin(o.timestamp))


class NextPurchaseModel(RegressorMixin, BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """A regressor (scikit-learn's contract); missing feature values are
    allowed (imputed by the median). Targets that are amounts (never
    negative) give predictions that are never negative either."""

    def __init__(self, model: str = "lightgbm", random_state: int = 7):
        self.model = model
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X: Any, y: Any, feature_names: list[str] | None = None) -> "NextPurchaseModel":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        if self.model not in ("lightgbm", "ridge"):
            raise ValueError(f"model must be lightgbm or ridge, got {self.model!r}")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=float, y_numeric=True)
        if len(y) < 10:
            raise ValueError(f"needs at least 10 customers with a next order, got {len(y)} sample(s)")
        self.feature_names_ = list(feature_names) if feature_names is not None else \
            [f"x{i}" for i in range(X.shape[1])]
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
        self.floor_ = 0.0 if float(np.min(y)) >= 0 else -np.inf   # an order's value is never negative
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=float)
        value: np.ndarray = np.maximum(self.estimator_.predict(X), self.floor_)   # sklearn: Any
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
