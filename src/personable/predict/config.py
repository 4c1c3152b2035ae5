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
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ..settings import Section

KINDS = ("churn", "clv", "next_purchase", "send_time")


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.2        # the customary "significant shift" line (0.1: worth a look)
    ks_pvalue: float = 0.01


class MaintainSpec(Section):
    """How `personable serve` keeps one model up to date."""

    retrain_days: Annotated[float, Field(gt=0)] = 7.0
    """Train a new version when the latest is older than this."""
    retrain_on_drift: bool = True
    """... or when its inputs or scores drifted."""
    score: bool = True
    """Write fresh scores (computed traits) on every pass."""


@dataclass(frozen=True)
class ModelsConfig:
    horizon_days: int = 30
    drift: DriftThresholds = DriftThresholds()
    maintain: dict[str, MaintainSpec] = field(default_factory=dict)


class DriftSection(Section):
    """A feature or score drifted past either line."""

    psi: Annotated[float, Field(gt=0)] = 0.2
    """Population stability index above this: drifted."""
    ks_pvalue: Annotated[float, Field(gt=0)] = 0.01
    """Kolmogorov-Smirnov p-value below this: drifted."""


class ModelsSection(Section):
    """Predictive models (docs/models.md)."""

    horizon_days: Annotated[int, Field(ge=1)] = 30
    """How far ahead churn, CLV and next purchase look, in days."""
    drift: DriftSection = DriftSection()
    maintain: dict[Literal[KINDS], MaintainSpec] = {}  # type: ignore[valid-type]
    """Models kept up to date by `personable serve`, every scheduler.models_maintain_hours (opt-in)."""

    @field_validator("maintain", mode="before")
    @classmethod
    def _listed_means_defaults(cls, value: Any) -> Any:
        # `churn:` with nothing under it: maintained with the defaults.
        return {k: {} if v is None else v for k, v in value.items()} if isinstance(value, dict) else value

    def to_config(self) -> ModelsConfig:
        return ModelsConfig(self.horizon_days, DriftThresholds(self.drift.psi, self.drift.ks_pvalue),
                            dict(self.maintain))
