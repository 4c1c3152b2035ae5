"""The model registry on a project: train, evaluate, register, score, watch
for drift. Reached as ``engine.models``.

Every trained model is a new version with its training window, features,
parameters, metrics and a hash of the data it saw; its artifact (joblib) and a
sample of its training features (the drift reference) are kept under
``.personable/models/<name>/``. Scoring writes computed traits on profiles,
which segment rules can use (``{computed: churn_risk, gt: 0.7}``).
"""

from __future__ import annotations

import builtins
import hashlib
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import NotFound, ValidationFailed
from .config import KINDS
from .drift import DriftThresholds, drift_report
from ..ports import PROFILES_CHANGED, ProfilesChanged
from .features import FEATURES, activity_after, customer_features, order_summary
from ..privacy.batch import BatchConsent

if TYPE_CHECKING:
    import pandas as pd

    from ..clock import Clock
    from ..config import Config
    from ..ports import Analytics, ComputedTraits, EventBus, ModelRegistry
    from ..privacy.consent import ConsentPolicy
    from ..privacy.refusals import RefusalLog

SCORES = {"churn": ("churn_risk",), "clv": ("clv_12m", "p_alive", "expected_purchases_90d"),
          "next_purchase": ("next_order_value",), "send_time": ("best_send_hour", "best_send_weekday")}

REFERENCE_ROWS = 50_000

# What each _train_<kind> returns: the artifact, its metrics, its parameters, a
# hash of the data it saw, and its drift reference (rows of features, or None).
Trained = tuple[Any, dict[str, Any], dict[str, Any], str, np.ndarray | None]


def _hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.nan_to_num(np.asarray(a, dtype=float))).tobytes())
    return h.hexdigest()[:16]


class ModelsService:
    def __init__(self, config: "Config", clock: "Clock", analytics: "Analytics", registry: "ModelRegistry",
                 computed: "ComputedTraits", bus: "EventBus", policy: "ConsentPolicy", refusals: "RefusalLog"):
        self.config, self.clock, self.analytics = config, clock, analytics
        self.registry, self.computed, self.bus = registry, computed, bus
        # Training and scoring read only the profiles the consent policy allows.
        self.consent = BatchConsent(policy, analytics, refusals)
        self.dir = config.state_dir / "models"

    def _features(self, cutoff: datetime) -> tuple[list[str], np.ndarray]:
        # In profile order: a store returns rows in any order, and the same data in
        # another order would train another model (folds) under another data hash.
        table = self.analytics.execute(self.consent.only_allowed(customer_features(cutoff, order_event=self.config.order_event))
                                       .order_by("profile_id"))
        ids = table.column("profile_id").to_pylist()
        X = np.column_stack([table.column(f).to_numpy(zero_copy_only=False).astype(float) for f in FEATURES]) \
            if table.num_rows else np.zeros((0, len(FEATURES)))
        # Sums over floats differ in the last bits from one store to another (the
        # order of addition); rounded, the same data trains the same model anywhere.
        return ids, np.round(X, 6)

    def _churn_data(self, cutoff: datetime, horizon: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        ids, X = self._features(cutoff)
        active = set(self.analytics.execute(activity_after(cutoff, horizon)).column("profile_id").to_pylist())
        return ids, X, np.array([0 if pid in active else 1 for pid in ids])

    def _next_order_data(self, cutoff: datetime, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        from .next_purchase import next_order_value

        ids, X = self._features(cutoff)
        y = {r["profile_id"]: r["next_order_value"] for r in
             self.analytics.execute(next_order_value(cutoff, horizon, self.config.order_event)).to_pylist()}
        keep = [i for i, pid in enumerate(ids) if y.get(pid) is not None]
        return X[keep], np.array([y[ids[i]] for i in keep], dtype=float)

    def _order_summary(self, now: datetime) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per customer with an order: repeat purchases, recency and age in weeks,
        and the average value of repeat purchases (BG/NBD and Gamma-Gamma inputs)."""
        rows = self.analytics.execute(self.consent.only_allowed(order_summary(now, self.config.order_event))).to_pydict()
        week = 604800.0
        n = np.array(rows["orders"], float)
        first = [t.timestamp() for t in rows["first_order"]]
        recency = (np.array([t.timestamp() for t in rows["last_order"]]) - first) / week if rows["orders"] else np.zeros(0)
        age = (now.timestamp() - np.array(first)) / week if rows["orders"] else np.zeros(0)
        # Average value of the repeat purchases: everything after the first order.
        monetary = np.array([(total - first_value) / (k - 1) if k > 1 and total is not None and first_value is not None
                             else 0.0 for k, total, first_value in
                             zip(rows["orders"], rows["revenue"], rows["first_order_value"])], float)
        rows = {"profile_id": rows["profile_id"], "frequency": n - 1, "recency": recency, "age": age,
                "monetary": monetary}
        return (rows["profile_id"], np.array(rows["frequency"], float), np.array(rows["recency"], float),
                np.array(rows["age"], float), np.array(rows["monetary"], float))

    def _groups(self, key: str = "cluster") -> "pd.Series | None":
        """Each profile's behavioural cluster (``segments cluster``), the group
        whose habits a thin send-time history leans on; None before clustering."""
        from ..tables import COMPUTED_VALUES as C

        rows = self.analytics.execute(C.filter(C.key == key).select("profile_id", "value")).to_pandas()
        return rows.set_index("profile_id")["value"] if len(rows) else None

    # -- training ----------------------------------------------------------------------------
    def train(self, name: str, horizon_days: int | None = None, model: str | None = None,
              reason: str = "manual") -> dict[str, Any]:
        """Train ``name`` (churn, clv, next_purchase, send_time), evaluate it on
        the most recent window it did not see, and register a new version."""
        import joblib

        horizon_days = horizon_days or self.config.models.horizon_days

        if name not in KINDS:
            raise ValidationFailed(f"unknown model {name!r}; use one of {', '.join(KINDS)}")
        now = self.clock.now()
        started = time.perf_counter()
        train_cutoff = now - timedelta(days=2 * horizon_days)
        test_cutoff = now - timedelta(days=horizon_days)
        try:
            with self.consent.running("training"):
                artifact, metrics, params, data_hash, reference = getattr(self, f"_train_{name}")(
                    now, train_cutoff, test_cutoff, horizon_days, model)
        except ValueError as exc:
            raise ValidationFailed(f"cannot train {name}: {exc}") from exc
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        folder = self.dir / name
        folder.mkdir(parents=True, exist_ok=True)
        version = self.registry.register_model(name, name, now, train_cutoff, horizon_days, list(FEATURES), params,
                                                   metrics, data_hash, "", reason)
        if reference is not None and len(reference) > REFERENCE_ROWS:   # enough for KS and PSI, small on disk
            reference = reference[np.random.default_rng(0).choice(len(reference), REFERENCE_ROWS, replace=False)]
        path = folder / f"v{version}.joblib"
        joblib.dump({"model": artifact, "reference": reference}, path)
        self.registry.set_model_artifact(name, version, str(path))
        return self.show(name, version)

    def _train_churn(self, now: datetime, train_cutoff: datetime, test_cutoff: datetime, horizon: int,
                     model: str | None) -> Trained:
        from .churn import ChurnModel

        _, X, y = self._churn_data(train_cutoff, horizon)
        _, Xt, yt = self._churn_data(test_cutoff, horizon)
        est = ChurnModel(model=model or "lightgbm", cv=3, search_iter=4).fit(X, y, list(FEATURES))
        metrics = {k: v for k, v in est.evaluate(Xt, yt).items() if k != "calibration"}
        metrics["cv"] = est.search_
        return est, metrics, {"model": est.model, **est.search_["best_params"]}, _hash(X, y), X

    def _train_next_purchase(self, now: datetime, train_cutoff: datetime, test_cutoff: datetime, horizon: int,
                             model: str | None) -> Trained:
        from .next_purchase import NextPurchaseModel

        X, y = self._next_order_data(train_cutoff, horizon)
        Xt, yt = self._next_order_data(test_cutoff, horizon)
        est = NextPurchaseModel(model=model or "lightgbm").fit(X, y, list(FEATURES))
        _, everyone = self._features(train_cutoff)   # it scores every customer, so that is its reference
        return est, est.evaluate(Xt, yt), {"model": est.model}, _hash(X, y), everyone

    def _train_clv(self, now: datetime, train_cutoff: datetime, test_cutoff: datetime, horizon: int,
                   model: str | None) -> Trained:
        from .clv import BetaGeoModel, GammaGammaModel

        # Held-out check: fit as of the test cutoff, compare expected with actual purchases after it.
        ids_h, x_h, r_h, t_h, _ = self._order_summary(test_cutoff)
        bg_h = BetaGeoModel().fit(x_h, r_h, t_h)
        with np.errstate(all="ignore"):
            expected = bg_h.expected_purchases(horizon / 7.0, x_h, r_h, t_h)
        if not np.isfinite(expected).all():
            # A handful of customers lets the likelihood run off to a = 1e13, b = 1e-5,
            # where the expectation is 0 * inf: too little history, said plainly.
            raise ValueError(f"too little purchase history for BG/NBD ({len(ids_h)} customers, "
                             f"{int((x_h > 0).sum())} repeat buyers): the fit is degenerate")
        ids, x, r, t, m = self._order_summary(now)
        later = dict(zip(ids, x))
        actual = np.array([later.get(pid, x_h[i]) - x_h[i] for i, pid in enumerate(ids_h)])
        bg = BetaGeoModel().fit(x, r, t)
        gg = GammaGammaModel().fit(x, m)
        metrics = {"bg_log_likelihood": bg.log_likelihood_, "gg_log_likelihood": gg.log_likelihood_,
                   "customers": len(ids), "repeat_buyers": int((x > 0).sum()),
                   "holdout_expected_purchases": float(expected.sum()), "holdout_actual_purchases": float(actual.sum()),
                   "holdout_mae_per_customer": float(np.mean(np.abs(expected - actual)))}
        reference = np.column_stack([x, r, t, m])
        return {"bg": bg, "gg": gg}, metrics, {**bg.params_, **gg.params_}, _hash(x, r, t, m), reference

    def _train_send_time(self, now: datetime, train_cutoff: datetime, test_cutoff: datetime, horizon: int,
                         model: str | None) -> Trained:
        from .send_time import SendTimeModel, engagement_expr

        engagement = self.analytics.execute(self.consent.only_allowed(engagement_expr(now))).to_pandas()
        if engagement.empty:
            raise ValueError("no email opens or visits yet")
        groups = self._groups()
        est = SendTimeModel().fit(engagement, groups)
        table = est.predict(engagement, groups)
        metrics = {"profiles": len(table), "median_evidence": float(np.median(table.send_time_evidence)),
                   "population_best_open_hour": est.population_best_open_hour_}
        data = engagement[["hour", "weekday", "opens", "visits"]].to_numpy(float)
        return est, metrics, {"prior_strength": est.prior_strength, "visit_weight": est.visit_weight}, _hash(data), None

    # -- registry ---------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        return self.registry.model_versions()

    def show(self, name: str, version: int | None = None) -> dict[str, Any]:
        versions = self.registry.model_versions(name)
        if not versions:
            raise NotFound(f"no model {name!r} trained yet; run `personable models train {name}`")
        chosen = versions[-1] if version is None else next((v for v in versions if v["version"] == version), None)
        if chosen is None:
            raise NotFound(f"no version {version} of {name!r}")
        return {**chosen, "versions": len(versions), "monitoring": self.registry.monitoring(name, 5)}

    def _load(self, name: str, version: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        import joblib

        meta = self.show(name, version)
        return meta, joblib.load(meta["artifact"])

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Score every profile the consent policy allows (``privacy.uses.scoring``)
        now; the scores become computed traits (a refused profile's are removed)."""
        with self.consent.running("scoring"):
            return self._score(name, version)

    def _score(self, name: str, version: int | None) -> dict[str, Any]:
        meta, saved = self._load(name, version)
        now, est = self.clock.now(), saved["model"]
        if name in ("churn", "next_purchase"):
            ids, X = self._features(now)
            values = est.churn_probability(X) if name == "churn" else est.predict(X)
            table = pa.table({"profile_id": pa.array(ids, pa.string()),
                              SCORES[name][0]: pa.array(np.round(values, 4), pa.float64())})
        elif name == "clv":
            from .clv import customer_lifetime_value

            ids, x, r, t, m = self._order_summary(now)
            bg, gg = est["bg"], est["gg"]
            table = pa.table({"profile_id": pa.array(ids, pa.string()),
                              "clv_12m": pa.array(np.round(customer_lifetime_value(bg, gg, x, r, t, m, months=12), 2)),
                              "p_alive": pa.array(np.round(bg.p_alive(x, r, t), 4)),
                              "expected_purchases_90d": pa.array(np.round(bg.expected_purchases(90 / 7.0, x, r, t), 3))})
        else:
            from sklearn.base import clone

            from .send_time import engagement_expr

            # Refitted on the latest engagement: the habits move, and the model keeps no profile's history.
            fresh = clone(est).fit_predict(self.analytics.execute(self.consent.only_allowed(engagement_expr(now))).to_pandas(),
                                           self._groups())
            table = pa.table({"profile_id": pa.array(fresh.profile_id.tolist(), pa.string()),
                              "best_send_hour": pa.array(fresh.best_send_hour.astype(int).tolist(), pa.int64()),
                              "best_send_weekday": pa.array(fresh.best_send_weekday.astype(int).tolist(), pa.int64())})
        changed = self.computed.write_computed(list(SCORES[name]), table, now)
        if changed:
            self.bus.publish(PROFILES_CHANGED, ProfilesChanged(tuple(sorted(changed)), origin="models"))
        return {"model": name, "version": meta["version"], "scored": table.num_rows, "traits": list(SCORES[name]),
                "changed_profiles": len(changed)}

    # -- monitoring ------------------------------------------------------------------------------
    def evaluate(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Judge a registered version on the latest window whose outcome is known
        (labels arrive as time passes); kept, so a decay shows over time."""
        with self.consent.running("training"):
            return self._evaluate(name, version)

    def _evaluate(self, name: str, version: int | None) -> dict[str, Any]:
        meta, saved = self._load(name, version)
        horizon = meta["horizon_days"] or 30
        now, est = self.clock.now(), saved["model"]
        cutoff = now - timedelta(days=horizon)
        if name == "churn":
            _, X, y = self._churn_data(cutoff, horizon)
            result = {k: v for k, v in est.evaluate(X, y).items() if k != "calibration"}
        elif name == "next_purchase":
            X, y = self._next_order_data(cutoff, horizon)
            result = est.evaluate(X, y)
        elif name == "clv":
            ids, x, r, t, _ = self._order_summary(cutoff)
            later = dict(zip(*self._order_summary(now)[:2]))
            actual = np.array([later.get(pid, x[i]) - x[i] for i, pid in enumerate(ids)])
            expected = est["bg"].expected_purchases(horizon / 7.0, x, r, t)
            result = {"expected_purchases": float(expected.sum()), "actual_purchases": float(actual.sum()),
                      "mae_per_customer": float(np.mean(np.abs(expected - actual)))}
        else:
            raise ValidationFailed("send_time has no outcome to evaluate against; see its hit rate in docs/benchmarks.md")
        report = {"model": name, "version": meta["version"], "window_start": cutoff.isoformat(),
                  "window_days": horizon, "metrics": result, "trained_metrics": meta["metrics"]}
        self.registry.record_monitoring(name, meta["version"], now, "performance", report)
        return report

    def drift(self, name: str, version: int | None = None, thresholds: DriftThresholds | None = None,
              retrain: bool = False) -> dict[str, Any]:
        """Compare the features a model was trained on, and the scores it gave
        them, with today's; record the check, and retrain (a new version,
        reason "drift") when asked and something drifted."""
        with self.consent.running("training"):
            return self._drift(name, version, thresholds, retrain)

    def _drift(self, name: str, version: int | None, thresholds: DriftThresholds | None,
               retrain: bool) -> dict[str, Any]:
        meta, saved = self._load(name, version)
        reference = saved.get("reference")
        if reference is None:
            raise ValidationFailed(f"{name} keeps no reference sample to compare with")
        now, est = self.clock.now(), saved["model"]
        if name == "clv":
            _, x, r, t, m = self._order_summary(now)
            current, columns = np.column_stack([x, r, t, m]), ["frequency", "recency", "age", "monetary"]
        else:
            _, current = self._features(now)
            columns = list(FEATURES)
        before = {c: reference[:, i] for i, c in enumerate(columns)}
        after = {c: current[:, i] for i, c in enumerate(columns)}
        score = f"score:{SCORES[name][0] if name != 'clv' else 'p_alive'}"
        before[score], after[score] = self._scores(name, est, reference), self._scores(name, est, current)
        report = drift_report(before, after, thresholds or self.config.models.drift)
        report["model"], report["version"] = name, meta["version"]
        self.registry.record_monitoring(name, meta["version"], now, "drift", report)
        if retrain and report["drifted"]:
            report["retrained"] = self.train(name, meta["horizon_days"], reason="drift")["version"]
        return report

    @staticmethod
    def _scores(name: str, est: Any, X: np.ndarray) -> np.ndarray:
        """What the model says about rows of its own reference layout."""
        if len(X) == 0:
            return np.zeros(0)
        scores: np.ndarray   # est is whichever kind of model was registered: Any to the checker
        if name == "churn":
            scores = est.churn_probability(X)
        elif name == "next_purchase":
            scores = est.predict(X)
        else:
            scores = est["bg"].p_alive(X[:, 0], X[:, 1], X[:, 2])
        return scores

    # -- maintenance -------------------------------------------------------------------------------
    def maintain(self) -> builtins.list[dict[str, Any]]:
        """What ``serve`` runs on schedule for every model under
        ``models.maintain``: train when there is no version or the latest is
        older than ``retrain_days``; otherwise judge it on the labels that have
        arrived and check drift (retraining on drift when asked); then score.
        Each step lands in the registry (versions with their reason, monitoring)."""
        return [self._maintain(name, spec) for name, spec in self.config.models.maintain.items()]

    def _maintain(self, name: str, spec: Any) -> dict[str, Any]:
        from ..errors import PersonableError

        done: dict[str, Any] = {"model": name, "steps": []}
        steps = done["steps"]
        try:
            versions = self.registry.model_versions(name)
            latest = versions[-1] if versions else None
            now = self.clock.now()
            age = (now - datetime.fromisoformat(latest["trained_at"])).total_seconds() / 86400 if latest else None
            if latest is None or age >= spec.retrain_days:
                trained = self.train(name, latest["horizon_days"] if latest else None,
                                     reason="schedule" if latest else "first")
                steps.append({"step": "train", "version": trained["version"], "reason": trained["reason"]})
            elif name != "send_time":   # it has neither labels nor a reference sample
                judged = self.evaluate(name)
                steps.append({"step": "evaluate", "version": judged["version"], "metrics": judged["metrics"]})
                drift = self.drift(name, retrain=spec.retrain_on_drift)
                steps.append({"step": "drift", "version": drift["version"], "drifted": drift["drifted"]})
                if drift.get("retrained"):
                    steps.append({"step": "train", "version": drift["retrained"], "reason": "drift"})
            if spec.score:
                scored = self.score(name)
                steps.append({"step": "score", "version": scored["version"], "scored": scored["scored"]})
        except PersonableError as exc:
            done["skipped"] = exc.message
        return done
