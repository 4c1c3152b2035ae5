"""Churn propensity: a scikit-learn-style estimator around LightGBM (or a
logistic-regression baseline) with a hyperparameter search under stratified
k-fold cross-validation, calibrated probabilities, the usual metrics and two
kinds of feature importance."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

MODELS = ("lightgbm", "logistic")


class ChurnModel(ClassifierMixin, BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """A binary classifier (scikit-learn's contract: ``classes_``,
    ``predict_proba`` with a column per class, ``predict``); missing feature
    values are allowed (imputed by the median)."""

    def __init__(self, model: str = "lightgbm", calibration: str = "isotonic", cv: int = 5, search_iter: int = 6,
                 random_state: int = 7):
        self.model = model
        self.calibration = calibration
        self.cv = cv
        self.search_iter = search_iter
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False   # churned or not
        return tags

    def _check(self, y: np.ndarray) -> None:
        problems = []
        if self.model not in MODELS:
            problems.append(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.calibration not in ("isotonic", "sigmoid"):
            problems.append(f"calibration must be isotonic or sigmoid, got {self.calibration!r}")
        if not (isinstance(self.cv, int) and self.cv >= 2):
            problems.append(f"cv must be a whole number of at least 2, got {self.cv!r}")
        counts = np.bincount(y.astype(int))
        if len(counts) != 2 or (isinstance(self.cv, int) and counts.min() < self.cv):
            problems.append(f"labels need both classes, each at least cv={self.cv} times; got {len(counts)} class(es) "
                            f"in {len(y)} sample(s)")
        if problems:
            raise ValueError("; ".join(problems))

    def _pipeline(self) -> tuple[Any, dict[str, list[float]]]:   # the pipeline, its search grid
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        if self.model == "logistic":
            pipe = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()),
                             ("model", LogisticRegression(max_iter=2000))])
            return pipe, {"model__C": [0.01, 0.1, 1.0, 10.0]}
        import lightgbm as lgb

        pipe = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                         ("model", lgb.LGBMClassifier(random_state=self.random_state, verbose=-1, n_jobs=1))])
        return pipe, {"model__n_estimators": [100, 200, 400], "model__learning_rate": [0.03, 0.05, 0.1],
                      "model__num_leaves": [7, 15, 31], "model__min_child_samples": [10, 20, 40]}

    def fit(self, X: Any, y: Any, feature_names: list[str] | None = None) -> "ChurnModel":
        """``y``: two classes; the second of ``classes_`` (sorted; 1 for 0/1 labels) is "churned"."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold

        X, labels = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=float)
        check_classification_targets(labels)
        if type_of_target(labels) == "multiclass":
            raise ValueError("Only binary classification is supported (churned or not). The type of the target "
                             "is multiclass.")
        self.classes_, y = np.unique(labels, return_inverse=True)
        self._check(y)
        self.feature_names_ = list(feature_names) if feature_names is not None else \
            [f"x{i}" for i in range(X.shape[1])]
        pipe, grid = self._pipeline()
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        search = RandomizedSearchCV(pipe, grid, n_iter=min(self.search_iter, int(np.prod([len(v) for v in grid.values()]))),
                                    scoring="roc_auc", cv=folds, random_state=self.random_state, n_jobs=1)
        search.fit(X, y)
        self.search_ = {"best_params": search.best_params_, "cv_auc_mean": float(search.best_score_),
                        "cv_auc_std": float(search.cv_results_["std_test_score"][search.best_index_])}
        self.uncalibrated_ = search.best_estimator_
        self.estimator_ = CalibratedClassifierCV(search.best_estimator_, method=self.calibration, cv=folds).fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, a column per class of ``classes_``."""
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=float)
        proba: np.ndarray = self.estimator_.predict_proba(X)   # sklearn: Any
        return proba

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        labels: np.ndarray = self.classes_[proba.argmax(axis=1)]
        return labels

    def churn_probability(self, X: Any) -> np.ndarray:
        """Calibrated probability of the second class (churned)."""
        churn: np.ndarray = self.predict_proba(X)[:, 1]
        return churn

    def evaluate(self, X: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
        from sklearn.calibration import calibration_curve
        from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

        y = (np.asarray(y) == self.classes_[1]).astype(int)
        p = self.churn_probability(X)
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        return {"auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
                "brier": float(brier_score_loss(y, p)), "base_rate": float(y.mean()), "n": int(len(y)),
                "calibration": [{"predicted": float(a), "observed": float(b)} for a, b in zip(predicted, observed)]}

    def importance(self, X: np.ndarray, y: np.ndarray, repeats: int = 5) -> dict[str, dict[str, float]]:
        """Gain (LightGBM's own, or |coefficient| for the baseline) and permutation
        importance (drop in AUC when a feature is shuffled) on the data given."""
        from sklearn.inspection import permutation_importance

        model = self.uncalibrated_.named_steps["model"]
        if self.model == "lightgbm":
            gain = model.booster_.feature_importance(importance_type="gain")
        else:
            gain = np.abs(model.coef_[0])
        perm = permutation_importance(self.uncalibrated_, np.asarray(X, dtype=float),
                                      (np.asarray(y) == self.classes_[1]).astype(int),
                                      scoring="roc_auc", n_repeats=repeats, random_state=self.random_state)
        order = np.argsort(-perm.importances_mean)
        return {"gain": {self.feature_names_[i]: float(gain[i]) for i in np.argsort(-gain)},
                "permutation": {self.feature_names_[i]: float(perm.importances_mean[i]) for i in order}}
