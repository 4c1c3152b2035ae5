"""Clusters on a project: fit on the feature matrix, store each profile's
cluster as a computed trait, keep the model to assign new profiles. Reached
through ``engine.segments.cluster()`` / ``assign_clusters()``."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import NotFound, ValidationFailed
from ..ports import PROFILES_CHANGED, ProfilesChanged
from .clustering import ProfileClusterer
from .features import DEFAULT_FEATURES, feature_expr

if TYPE_CHECKING:
    from ..clock import Clock
    from ..config import Config
    from ..ports import Analytics, ComputedTraits, EventBus

MIN_EVENTS = 5  # fewer events say too little about habits to place a profile


class ClusterJobs:
    def __init__(self, config: "Config", clock: "Clock", analytics: "Analytics", computed: "ComputedTraits",
                 bus: "EventBus"):
        self.clock, self.analytics, self.computed, self.bus = clock, analytics, computed, bus
        self.order_event = config.order_event
        self.dir = config.state_dir / "models"

    def _matrix(self, features: tuple[str, ...], customers_only: bool = False) -> tuple[list[str], np.ndarray, pa.Table]:
        table = self.analytics.execute(feature_expr(self.clock.now(), min_events=MIN_EVENTS, customers_only=customers_only,
                                                  order_event=self.order_event))
        unknown = [f for f in features if f not in table.column_names]
        if unknown:
            raise ValidationFailed(f"unknown features: {', '.join(unknown)}; choose from {', '.join(table.column_names[1:])}")
        ids = table.column("profile_id").to_pylist()
        X = np.column_stack([table.column(f).to_numpy(zero_copy_only=False).astype(float) for f in features]) \
            if table.num_rows else np.zeros((0, len(features)))
        return ids, X, table

    def fit(self, method: str = "kmeans", n_clusters: int | str = "auto", pca: float | int | None = None,
            features: tuple[str, ...] | None = None, stability_boots: int = 5,
            population: str = "customers") -> dict[str, Any]:
        """Fit on ``population`` (customers: profiles with a userId; all: every
        profile with enough events), then place every profile with enough events.

        Customers by default: anonymous visitors are many, brief and alike, and
        fitting on them bends the clusters towards "people who looked around";
        they are still placed in the customers' clusters afterwards."""
        import joblib

        if population not in ("customers", "all"):
            raise ValidationFailed(f"population must be customers or all, got {population!r}")
        started = time.perf_counter()
        features = tuple(features or DEFAULT_FEATURES)
        ids, X, _ = self._matrix(features, customers_only=population == "customers")
        model = ProfileClusterer(method=method, n_clusters=n_clusters, pca=pca)
        try:
            model.fit(X, feature_names=list(features))
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from exc
        described = [asdict(d) for d in model.describe(X)]
        stability = model.stability(X, stability_boots) if stability_boots else None
        meta = {"method": method, "n_clusters": model.n_clusters_, "scores": {str(k): v for k, v in model.scores_.items()},
                "features": list(features), "population": population, "profiles_fitted": len(ids),
                "clusters": described, "stability": stability,
                "fitted_at": self.clock.now().isoformat(), "min_events": MIN_EVENTS,
                "seconds": round(time.perf_counter() - started, 2)}
        self.dir.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, self.dir / "clusters.joblib")
        (self.dir / "clusters.json").write_text(json.dumps(meta, indent=2))
        all_ids, X_all, _ = self._matrix(features)
        changed = self._write(all_ids, model.predict(X_all) if len(all_ids) else np.zeros(0, dtype=int))
        return {**meta, "profiles_assigned": len(all_ids), "changed_profiles": len(changed)}

    def _write(self, ids: list[str], labels: np.ndarray) -> list[str]:
        table = pa.table({"profile_id": pa.array(ids, pa.string()),
                          "cluster": pa.array([int(x) if x >= 0 else None for x in labels], pa.int64())})
        changed = self.computed.write_computed(["cluster"], table, self.clock.now(), history_keys=("cluster",))
        if changed:
            self.bus.publish(PROFILES_CHANGED, ProfilesChanged(tuple(sorted(changed)), origin="clusters"))
        return changed

    def model(self) -> tuple[ProfileClusterer, dict[str, Any]]:
        import joblib

        path = self.dir / "clusters.joblib"
        if not path.exists():
            raise NotFound("no cluster model yet; run `personable segments cluster` first")
        return joblib.load(path), json.loads((self.dir / "clusters.json").read_text())

    def assign(self) -> dict[str, Any]:
        """Place every profile with enough events in the existing clusters
        (new profiles, and those whose behaviour changed) without refitting."""
        model, meta = self.model()
        ids, X, _ = self._matrix(tuple(meta["features"]))
        labels = model.predict(X) if len(ids) else np.zeros(0, dtype=int)
        changed = self._write(ids, labels)
        return {"profiles": len(ids), "changed_profiles": len(changed), "model_fitted_at": meta["fitted_at"]}
