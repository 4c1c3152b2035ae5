"""CLV models reproduce the published CDNOW estimates (the data ships in the
`lifetimes` wheel; its code is not used)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

from personable.predict.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value


def _cdnow(name: str) -> pd.DataFrame:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None:
        pytest.skip("the CDNOW data comes with the lifetimes wheel: pip install lifetimes (in the [dev] extra)")
    return pd.read_csv(os.path.join(spec.submodule_search_locations[0], "datasets", name))


@pytest.fixture(scope="module")
def bg():
    df = _cdnow("cdnow_customers_summary.csv")
    return BetaGeoModel().fit(df.frequency, df.recency, df["T"]), df


def test_bg_nbd_reproduces_the_published_cdnow_estimates(bg):
    model, df = bg
    assert model.n_customers_ == 2357
    p = model.params_
    assert p["r"] == pytest.approx(0.243, abs=0.001)
    assert p["alpha"] == pytest.approx(4.414, abs=0.005)
    assert p["a"] == pytest.approx(0.793, abs=0.002)
    assert p["b"] == pytest.approx(2.426, abs=0.005)
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)


def test_bg_nbd_predictions(bg):
    model, df = bg
    # The paper's worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the next 39 weeks.
    assert model.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.002)
    alive = model.p_alive(df.frequency, df.recency, df["T"])
    assert np.all((alive > 0) & (alive <= 1)) and np.all(alive[df.frequency == 0] == 1.0)
    # Someone who bought often long ago is less likely alive than someone who just bought.
    assert model.p_alive(10, 5, 38.86) < model.p_alive(10, 38, 38.86)
    # Expectations grow with the horizon and never exceed what the purchase rate allows.
    e39, e78 = (model.expected_purchases(t, df.frequency, df.recency, df["T"]) for t in (39, 78))
    assert np.all(e78 >= e39) and np.all(e39 >= 0)


def test_gamma_gamma_reproduces_the_published_cdnow_estimates():
    df = _cdnow("cdnow_customers_summary_with_transactions.csv")
    model = GammaGammaModel().fit(df.x, df.zbar)
    assert model.n_customers_ == 946
    p = model.params_
    assert p["p"] == pytest.approx(6.25, abs=0.01)
    assert p["q"] == pytest.approx(3.74, abs=0.01)
    assert p["gamma"] == pytest.approx(15.44, abs=0.05)
    value = model.expected_average_value(df.x, df.zbar)
    assert value[df.x == 0].min() == pytest.approx(p["p"] * p["gamma"] / (p["q"] - 1))


def test_clv_is_discounted_and_ranks_customers(bg):
    model, df = bg
    gg = GammaGammaModel().fit(*_repeat(_cdnow("cdnow_customers_summary_with_transactions.csv")))
    tx = _cdnow("cdnow_customers_summary_with_transactions.csv")
    clv = customer_lifetime_value(model, gg, tx.x, tx.t_x, tx["T"], tx.zbar, months=12)
    undiscounted = customer_lifetime_value(model, gg, tx.x, tx.t_x, tx["T"], tx.zbar, months=12, monthly_discount=0.0)
    assert np.all(clv <= undiscounted + 1e-9) and np.all(clv >= 0)
    best = int(np.argmax(clv))
    assert tx.x[best] >= 10   # the most valuable customers buy often


def _repeat(df: pd.DataFrame):
    return df.x, df.zbar


@pytest.mark.parametrize("args", [([-1], [1], [2]), ([1], [3], [2]), ([2], [0], [5])])
def test_bad_histories_are_refused(args):
    with pytest.raises(ValueError, match="frequency must be"):
        BetaGeoModel().fit(*args)


def test_long_silence_after_many_purchases_is_finite(bg):
    # 2F1(r + x, b + x; ...) overflows to inf for a very frequent buyer, and the dropout odds for one silent
    # for long: expected purchases came out NaN (the demo then crashed on a None metric).
    model, _ = bg
    frequency, recency, T = np.array([2000.0, 400.0, 0.0]), np.array([1.0, 1.0, 0.0]), np.array([10.0, 2000.0, 2000.0])
    expected = model.expected_purchases(30, frequency, recency, T)
    alive = model.p_alive(frequency, recency, T)
    assert np.isfinite(expected).all() and np.isfinite(alive).all()
    assert (expected[:2] < 1e-6).all() and (alive[:2] < 1e-6).all()   # certainly gone
