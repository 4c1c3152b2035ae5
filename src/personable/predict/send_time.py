"""Best send time: each profile's best hour (and weekday) to send, from the
hours it opened emails and visited, shrunk towards its group's (segment or
cluster) and the population's habits when its own history is thin.

Hours are circular (23:00 is next to 00:00): counts are smoothed over the
neighbouring hours before the best one is chosen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..tables import PROFILE_EVENTS as EVENTS

def engagement_expr(cutoff: datetime | None = None) -> ir.Table:
    """Per profile, hour and weekday: email opens and visits (page views)."""
    e = EVENTS
    if cutoff is not None:
        e = e.filter(e.timestamp < ibis.literal(cutoff))
    opens = (e.type == "track") & (e.event == "Email Opened")
    visits = e.type == "page"
    e = e.filter(opens | visits)
    return e.group_by(profile_id=e.profile_id, hour=e.timestamp.hour(), weekday=e.timestamp.day_of_week.index()).aggregate(
        opens=opens.sum(), visits=visits.sum())


def _smooth(counts: np.ndarray, bandwidth: int) -> np.ndarray:
    """Circular smoothing over +-bandwidth hours (triangular weights)."""
    out = np.zeros_like(counts, dtype=float)
    for shift in range(-bandwidth, bandwidth + 1):
        out += (bandwidth + 1 - abs(shift)) * np.roll(counts, shift, axis=-1)
    return out


class SendTimeModel(BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """``fit`` learns the habits of the population and of each group (shares
    of engagement per hour and weekday); ``predict`` gives each profile of an
    engagement table its best hour and weekday, its own counts shrunk towards
    its group's habits. A scikit-learn estimator over a table (no mixin: it
    is neither a classifier nor a transformer of a numeric matrix); it keeps
    no profile's history."""

    def __init__(self, prior_strength: float = 3.0, visit_weight: float = 0.15, bandwidth: int = 1):
        self.prior_strength = prior_strength
        self.visit_weight = visit_weight
        self.bandwidth = bandwidth

    def _matrix(self, engagement: pd.DataFrame, column: str, size: int) -> tuple[list[str], np.ndarray]:
        weight = engagement["opens"].astype(float) + self.visit_weight * engagement["visits"].astype(float)
        table = pd.crosstab(engagement["profile_id"], engagement[column], values=weight, aggfunc="sum").fillna(0.0)
        table = table.reindex(columns=range(size), fill_value=0.0)
        return list(table.index), table.to_numpy(dtype=float)

    def fit(self, engagement: pd.DataFrame, groups: pd.Series | None = None) -> "SendTimeModel":
        """``engagement``: rows of (profile_id, hour, weekday, opens, visits);
        ``groups``: optional profile_id -> group (a segment or cluster)."""
        if self.prior_strength < 0 or self.visit_weight < 0 or self.bandwidth < 0:
            raise ValueError("prior_strength, visit_weight and bandwidth must not be negative")
        profiles, hours = self._matrix(engagement, "hour", 24)
        _, days = self._matrix(engagement, "weekday", 7)
        self.population_hour_ = hours.sum(axis=0) / max(hours.sum(), 1e-9)
        opens = pd.crosstab(engagement["profile_id"], engagement["hour"], values=engagement["opens"].astype(float),
                            aggfunc="sum").reindex(columns=range(24), fill_value=0.0).fillna(0.0).to_numpy().sum(axis=0)
        # The baseline to beat: everyone at the hour the population opens most.
        self.population_best_open_hour_ = int(_smooth(opens[None, :], self.bandwidth).argmax())
        self.population_weekday_ = days.sum(axis=0) / max(days.sum(), 1e-9)
        self.group_hour_: dict[Any, np.ndarray] = {}   # group value (a segment, a country) -> hour shares
        if groups is not None:
            group_of = groups.reindex(profiles)
            for g in group_of.dropna().unique():
                rows = hours[(group_of == g).to_numpy()]
                self.group_hour_[g] = rows.sum(axis=0) / max(rows.sum(), 1e-9)
        return self

    def predict(self, engagement: pd.DataFrame, groups: pd.Series | None = None) -> pd.DataFrame:
        """Per profile of ``engagement``: best_send_hour, best_send_weekday and
        send_time_evidence (its own weighted engagement count)."""
        check_is_fitted(self, "population_hour_")
        profiles, hours = self._matrix(engagement, "hour", 24)
        _, days = self._matrix(engagement, "weekday", 7)
        group_of = groups.reindex(profiles) if groups is not None else pd.Series([None] * len(profiles))
        priors = np.array([self.group_hour_.get(g, self.population_hour_) for g in group_of]).reshape(-1, 24)
        k = self.prior_strength
        # Mean of own shares and the prior, weighted by how much the profile has shown us.
        posterior = hours + k * priors
        return pd.DataFrame({"profile_id": profiles, "best_send_hour": _smooth(posterior, self.bandwidth).argmax(axis=1),
                             "best_send_weekday": (days + k * self.population_weekday_).argmax(axis=1),
                             "send_time_evidence": hours.sum(axis=1)})

    def fit_predict(self, engagement: pd.DataFrame, groups: pd.Series | None = None) -> pd.DataFrame:
        return self.fit(engagement, groups).predict(engagement, groups)

    @property
    def population_best_hour_(self) -> int:
        return int(_smooth(self.population_hour_[None, :], self.bandwidth).argmax())


def within(hours: np.ndarray, truth: np.ndarray, tolerance: int = 1) -> np.ndarray:
    """Whether each chosen hour is within +-tolerance hours of the truth (circularly)."""
    d: np.ndarray = np.abs(np.asarray(hours) - np.asarray(truth)) % 24
    close: np.ndarray = np.minimum(d, 24 - d) <= tolerance   # numpy types arithmetic on untyped arrays as Any
    return close
