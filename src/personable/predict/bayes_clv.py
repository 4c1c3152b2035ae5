"""Bayesian BG/NBD through pymc-marketing: the same model as
:class:`personable.predict.clv.BetaGeoModel`, with credible intervals.

The maximum-likelihood fit in ``clv.py`` gives one number per customer; this one
samples the posterior of r, alpha, a, b by MCMC (NUTS) and so says how sure it
is: a 94% interval on each parameter and on each customer's expected purchases
and P(alive). It is optional (the ``[bayes]`` extra) because pymc-marketing
brings PyMC, PyTensor (which compiles C with g++ at run time), ArviZ, numba and
matplotlib, hundreds of MB the core engine does not need, and a fit takes
seconds rather than milliseconds. Estimators follow scikit-learn: the
constructor stores settings, ``fit`` learns, learned values end in ``_``.

What is kept after ``fit`` is the posterior sample of the four parameters
(``samples_``), not pymc-marketing's model, which holds the customers it was
fitted on: each prediction evaluates the same BG/NBD formulas as ``clv.py``
once per posterior draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from personable.errors import PersonableError

from .clv import bg_expected_purchases, bg_p_alive

if TYPE_CHECKING:  # the [bayes] extra; without it these are Any to the checker
    from pymc_marketing.clv import BetaGeoModel as _PymcBetaGeo

Floats = npt.NDArray[np.float64]

_PARAMS = ("r", "alpha", "a", "b")
_MISSING = "the Bayesian engine needs the [bayes] extra: pip install 'personable[bayes]'"


class BayesianBetaGeo(BaseEstimator):   # type: ignore[misc]   # scikit-learn is untyped
    """BG/NBD fitted by MCMC; ``params_`` are posterior means, ``intervals_``
    equal-tailed credible intervals holding ``interval`` of the posterior mass."""

    def __init__(self, draws: int = 1000, tune: int = 1000, chains: int = 2,
                 random_seed: int | None = None, interval: float = 0.94, progressbar: bool = False):
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.random_seed = random_seed
        self.interval = interval
        self.progressbar = progressbar

    def fit(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> BayesianBetaGeo:
        try:  # imported here so that `import personable` never pays for (or needs) PyMC
            from pymc_marketing.clv import BetaGeoModel as _PymcBetaGeo
        except ImportError as exc:
            raise PersonableError(_MISSING) from exc
        data = self._frame(frequency, recency, T)
        if len(data) == 0 or (data.frequency < 0).any() or (data.recency > data["T"]).any() \
                or ((data.frequency > 0) & (data.recency <= 0)).any():
            raise ValueError("frequency must be >= 0, recency <= T, and recency > 0 for repeat buyers")
        # pymc-marketing's default priors are weak (Weibull on r and alpha, a
        # hierarchical Beta on a, b); with thousands of customers the likelihood
        # dominates and the posterior centres on the MLE.
        model: _PymcBetaGeo = _PymcBetaGeo()   # not kept: it holds the data it was fitted on
        model.fit(data=data, draws=self.draws, tune=self.tune, chains=self.chains,
                  random_seed=self.random_seed, progressbar=self.progressbar)
        if model.idata is None:  # pymc-marketing's fit always samples; guard its Optional
            raise PersonableError("pymc-marketing's fit left no posterior samples")
        posterior = model.idata["posterior"]  # by key: arviz's groups are attributes its types do not declare
        self.samples_ = {name: posterior[name].values.reshape(-1) for name in _PARAMS}
        self.params_ = {name: float(s.mean()) for name, s in self.samples_.items()}
        self.intervals_ = {name: self._bounds(s, axis=0) for name, s in self.samples_.items()}
        self.n_customers_ = len(data)
        return self

    def expected_purchases(self, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike,
                           T: npt.ArrayLike) -> dict[str, np.ndarray]:
        """Expected purchases in the next ``t`` time units: ``mean``, ``low``, ``high`` per customer."""
        return self._per_chunk(lambda d, p: bg_expected_purchases(d["future_t"], d["frequency"], d["recency"],
                                                                  d["T"], *p),
                               self._frame(frequency, recency, T, future_t=t))

    def p_alive(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> dict[str, np.ndarray]:
        """Probability the customer has not dropped out by T: ``mean``, ``low``, ``high``."""
        return self._per_chunk(lambda d, p: bg_p_alive(d["frequency"], d["recency"], d["T"], *p),
                               self._frame(frequency, recency, T))

    def _draws(self) -> list[Floats]:
        """Each parameter's posterior draws as a column (draws x 1), to broadcast over customers."""
        check_is_fitted(self, "samples_")   # NotFittedError, a ValueError: "... Call 'fit' ..."
        return [np.asarray(self.samples_[name], dtype=float)[:, None] for name in _PARAMS]

    @staticmethod
    def _frame(frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike,
               **extra: npt.ArrayLike) -> pd.DataFrame:
        # pymc-marketing wants a DataFrame keyed by customer_id; broadcasting lets
        # a single customer be given as scalars, as with the MLE model.
        columns = dict(frequency=frequency, recency=recency, T=T, **extra)
        arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in columns.values()))
        frame = pd.DataFrame(dict(zip(columns, arrays)))
        frame.insert(0, "customer_id", np.arange(len(frame)))
        return frame

    def _bounds(self, values: Floats, axis: int) -> tuple[Any, Any]:
        # floats for a 1-D sample, one array of bounds per column otherwise
        tail = (1 - self.interval) / 2
        low, high = np.quantile(values, [tail, 1 - tail], axis=axis)
        return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)

    def _per_chunk(self, predict: Callable[[dict[str, Floats], list[Floats]], Floats], data: pd.DataFrame,
                   cells: int = 4_000_000) -> dict[str, np.ndarray]:
        # Every posterior draw for every customer (draws x customers floats, several times over);
        # in chunks a million customers stay within memory.
        params = self._draws()
        chunk = max(1, cells // len(params[0]))
        parts = []
        for i in range(0, len(data), chunk):
            part = data.iloc[i:i + chunk]
            with np.errstate(all="ignore"):
                values = predict({c: part[c].to_numpy(float)[None, :] for c in part.columns}, params)
            low, high = self._bounds(values, axis=0)
            parts.append({"mean": values.mean(axis=0), "low": low, "high": high})
        return {key: np.concatenate([part[key] for part in parts]) for key in ("mean", "low", "high")}
