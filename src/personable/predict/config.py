"""The ``models:`` section of personable.yaml: the default horizon, the drift
thresholds, and which models are kept up to date on a schedule::

    models:
      horizon_days: 30
      drift: {psi: 0.2, ks_pvalue: 0.01}
      maintain:                  # under `personable serve`, every scheduler.models_maintain_hours
        churn: {retrain_days: 7, retrain_on_drift: true}
        clv: {retrain_days: 7}
        send_time: {retrain_days: 1}

Maintenance is opt-in: training on a million customers is minutes of work a
project should choose to spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorList
from .drift import DriftThresholds

KINDS = ("churn", "clv", "next_purchase", "send_time")


@dataclass(frozen=True)
class MaintainSpec:
    retrain_days: float = 7.0        # train a new version when the latest is older than this
    retrain_on_drift: bool = True    # ... or when its inputs or scores drifted
    score: bool = True               # write fresh scores (computed traits) on every pass


@dataclass(frozen=True)
class ModelsConfig:
    horizon_days: int = 30
    drift: DriftThresholds = DriftThresholds()
    maintain: dict[str, MaintainSpec] = field(default_factory=dict)


def parse_models(raw: Any, errors: ErrorList) -> ModelsConfig:
    if raw is None:
        return ModelsConfig()
    if not isinstance(raw, dict):
        errors.add("models", "must be a mapping (horizon_days, drift, maintain)")
        return ModelsConfig()
    for key in raw:
        if key not in ("horizon_days", "drift", "maintain"):
            errors.add(f"models.{key}", "unknown setting; use horizon_days, drift or maintain")
    horizon = raw.get("horizon_days", 30)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        errors.add("models.horizon_days", f"must be a whole number of days >= 1, got {horizon!r}")
        horizon = 30
    drift = raw.get("drift") or {}
    thresholds = DriftThresholds()
    if not isinstance(drift, dict):
        errors.add("models.drift", "must be a mapping (psi, ks_pvalue)")
    else:
        values = {}
        for key, default in (("psi", 0.2), ("ks_pvalue", 0.01)):
            value = drift.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                errors.add(f"models.drift.{key}", f"must be a positive number, got {value!r}")
                value = default
            values[key] = float(value)
        thresholds = DriftThresholds(**values)
    maintain: dict[str, MaintainSpec] = {}
    specs = raw.get("maintain") or {}
    if not isinstance(specs, dict):
        errors.add("models.maintain", "must be a mapping of model: {retrain_days, retrain_on_drift, score}")
        specs = {}
    for name, spec in specs.items():
        path = f"models.maintain.{name}"
        if name not in KINDS:
            errors.add(path, f"unknown model; use one of {', '.join(KINDS)}")
            continue
        spec = spec or {}
        if not isinstance(spec, dict):
            errors.add(path, "must be a mapping (retrain_days, retrain_on_drift, score)")
            continue
        unknown = set(spec) - {"retrain_days", "retrain_on_drift", "score"}
        if unknown:
            errors.add(path, f"unknown setting {sorted(unknown)[0]!r}; use retrain_days, retrain_on_drift or score")
        days = spec.get("retrain_days", 7)
        if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
            errors.add(f"{path}.retrain_days", f"must be a positive number of days, got {days!r}")
            days = 7
        flags = {}
        for key in ("retrain_on_drift", "score"):
            flags[key] = spec.get(key, True)
            if not isinstance(flags[key], bool):
                errors.add(f"{path}.{key}", f"must be true or false, got {flags[key]!r}")
                flags[key] = True
        maintain[name] = MaintainSpec(float(days), **flags)
    return ModelsConfig(horizon, thresholds, maintain)
