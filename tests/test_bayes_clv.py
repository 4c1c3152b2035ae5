"""The optional Bayesian BG/NBD (pymc-marketing) agrees with the published
maximum-likelihood CDNOW fit and brackets it with its credible intervals."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pandas as pd
import pytest

from personable.errors import PersonableError
from personable.predict.bayes_clv import BayesianBetaGeo

# Fader, Hardie & Lee (2005), CDNOW: the MLE, and the worked example
# x = 2, t_x = 30.43, T = 38.86 expecting 1.226 purchases in the next 39 weeks.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# The posterior mean is not the MLE (the posterior is skewed and the priors are
# weak, not flat) and 1,000 draws carry Monte Carlo error. r and alpha are well
# pinned (posterior sd ~5% and ~9% of the mean; over seeds the means landed
# within 2.5%), so 5%; a and b are not (sd ~25-30%; means within 5%), so 15%.
TOLERANCE = {"r": 0.05, "alpha": 0.05, "a": 0.15, "b": 0.15}


def _cdnow() -> pd.DataFrame:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None:
        pytest.skip("the CDNOW data comes with the lifetimes wheel: pip install lifetimes (in the [dev] extra)")
    return pd.read_csv(os.path.join(spec.submodule_search_locations[0], "datasets", "cdnow_customers_summary.csv"))


@pytest.fixture(scope="module")
def fitted():
    pytest.importorskip("pymc_marketing",
                        reason="the Bayesian engine needs the [bayes] extra: pip install 'personable[bayes]'")
    df = _cdnow()
    # 2 chains x 500 draws: a few seconds of sampling on 2 cores (plus PyTensor's
    # one-off C compilation), enough for stable means and 94% intervals.
    model = BayesianBetaGeo(draws=500, tune=500, chains=2, random_seed=7).fit(df.frequency, df.recency, df["T"])
    return model, df


def test_posterior_agrees_with_the_published_mle(fitted):
    model, _ = fitted
    assert model.n_customers_ == 2357
    for name, published in PUBLISHED.items():
        mean, (low, high) = model.params_[name], model.intervals_[name]
        assert mean == pytest.approx(published, rel=TOLERANCE[name]), name
        assert low < mean < high, name
        assert low < published < high, f"{name}: {published} outside ({low:.3f}, {high:.3f})"


def test_expected_purchases_for_the_papers_example(fitted):
    model, df = fitted
    e = model.expected_purchases(39, 2, 30.43, 38.86)
    # The posterior mean of a non-linear function sits ~1% above the MLE plug-in value.
    assert e["mean"][0] == pytest.approx(1.226, abs=0.03)
    assert e["low"][0] < 1.226 < e["high"][0]
    many = model.expected_purchases(39, df.frequency, df.recency, df["T"])
    assert many["mean"].shape == (2357,)
    assert np.all((many["low"] <= many["mean"]) & (many["mean"] <= many["high"]) & (many["low"] >= 0))


def test_p_alive_has_intervals(fitted):
    model, df = fitted
    alive = model.p_alive(df.frequency, df.recency, df["T"])
    assert np.all((alive["low"] > 0) & (alive["low"] <= alive["mean"]))
    assert np.all((alive["mean"] <= alive["high"]) & (alive["high"] <= 1))
    assert np.all(alive["mean"][df.frequency == 0] == 1.0)   # no repeat purchase: cannot have dropped out yet
    recent, lapsed = model.p_alive([10, 10], [38, 5], [38.86, 38.86])["mean"]
    assert lapsed < recent


def test_predicting_before_fit_is_an_error():
    with pytest.raises(ValueError, match="fit"):
        BayesianBetaGeo().p_alive([1], [2.0], [3.0])


def test_missing_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymc_marketing", None)   # as if not installed
    monkeypatch.setitem(sys.modules, "pymc_marketing.clv", None)
    with pytest.raises(PersonableError, match=r"pip install 'personable\[bayes\]'"):
        BayesianBetaGeo().fit([1, 0], [2.0, 0.0], [3.0, 3.0])


def test_the_fitted_model_holds_no_customer(fitted):
    """pymc-marketing's model (kept before) holds the customers it was fitted
    on; the fitted estimator keeps only the posterior draws of r, alpha, a, b."""
    import pickle

    model, df = fitted
    arrays = [v for v in vars(model).values() if isinstance(v, np.ndarray)]
    arrays += [v for s in ("samples_",) for v in getattr(model, s).values()]
    assert all(len(a) != len(df) for a in arrays) and not hasattr(model, "model_")
    assert len(pickle.dumps(model)) < 8 * 4 * 1000 + 20_000    # four parameters x 1,000 draws, and a little
