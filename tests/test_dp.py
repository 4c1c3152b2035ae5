"""Anonymized aggregates (issue: privacy and security, point 8): the noise
mechanisms have the distributions they claim, small cells are suppressed,
every release pays from the ε budget and is refused past it -- on every
offline store, through the API and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from conftest import OFFLINE_STORES, project_on, run_cli, start_server, stop_server
from personable import Engine
from personable.errors import ValidationFailed
from personable.privacy.dp import BudgetExhausted, geometric_noise, private_counts, private_sum


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1.0, 2.0])
def test_geometric_noise_is_the_discrete_laplace_distribution(epsilon):
    z = geometric_noise(epsilon, 1.0, 400_000, np.random.default_rng(7))
    q = math.exp(-epsilon)
    assert z.dtype.kind == "i"
    assert abs(z.mean()) < 4 * math.sqrt(2 * q / (1 - q) ** 2 / len(z))            # unbiased
    assert z.var() == pytest.approx(2 * q / (1 - q) ** 2, rel=0.03)                 # its variance
    assert (z == 0).mean() == pytest.approx((1 - q) / (1 + q), rel=0.02)            # P(0)
    # P(z) / P(z + 1) = e^ε: what makes it ε-differentially private for a count.
    ratio = (z == 1).mean() / (z == 2).mean()
    assert ratio == pytest.approx(math.exp(epsilon), rel=0.06)


def test_counts_are_noisy_never_negative_and_small_cells_suppressed():
    rng = np.random.default_rng(3)
    truth = {"big": 5000, "mid": 400, "tiny": 2, "empty": 0}
    runs = [private_counts(truth, 4.0, k=10, rng=rng) for _ in range(300)]
    assert all(r["tiny"] is None and r["empty"] is None for r in runs)              # below k: suppressed
    big = np.array([r["big"] for r in runs])
    assert abs(big.mean() - 5000) < 1.5 and big.std() > 0.3                        # noisy, unbiased
    assert all(v is None or v >= 0 for r in runs for v in r.values())
    # The ε is split over the cells: one cell alone gets four times less noise than one of four.
    alone = np.array([private_counts({"big": 5000}, 4.0, rng=rng)["big"] for _ in range(3000)])
    shared = np.array([private_counts(truth, 4.0, rng=rng)["big"] for _ in range(3000)])
    assert shared.std() > 2.5 * alone.std()


def test_sums_clamp_each_value_first():
    rng = np.random.default_rng(5)
    values = [10.0] * 99 + [1e9]                       # one outlier cannot show through the clamp
    sums = np.array([private_sum(values, 0.0, 100.0, 1.0, rng) for _ in range(2000)])
    assert abs(sums.mean() - (990 + 100)) < 10 and sums.std() == pytest.approx(100 * math.sqrt(2), rel=0.1)
    with pytest.raises(ValidationFailed):
        private_sum(values, 5.0, 1.0, 1.0)


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    project = project_on(request, tmp_path)
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = {"pros": {"rule": {"trait": "plan", "eq": "pro"}},
                       "nobody": {"rule": {"trait": "plan", "eq": "platinum"}}}
    raw["privacy"]["dp"] = {"budget": 30.0, "k": 5}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def test_releases_pay_from_the_budget_and_stop_at_it(project):
    with Engine(project) as engine:
        engine.send([{"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro" if i < 60 else "free"}}
                     for i in range(80)] +
                    [{"type": "track", "userId": f"u{i}", "event": "Product Viewed" if i < 70 else "Order Completed",
                      "properties": {"order_id": f"o{i}", "revenue": 5.0}} for i in range(80)])
        engine.segments.refresh()
        # ε = 20 over two cells: the chance that the empty cell's noise reaches k = 5 is about e^-50,
        # so the suppression below is certain, not a coin that lands wrong one run in two hundred.
        sizes = engine.privacy.release("segment_sizes", 20.0)
        assert set(sizes["cells"]) == {"pros", "nobody"} and sizes["cells"]["nobody"] is None   # 0 < k: suppressed
        assert abs(sizes["cells"]["pros"] - 60) < 25 and sizes["suppressed"] == ["nobody"]
        assert sizes["budget"] == {"total": 30.0, "spent": 20.0, "left": 10.0}
        events = engine.privacy.release("event_counts", 10.0, k=0)
        # The cells are configured, not read off the data (which would say which events exist).
        assert list(events["cells"]) == ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
        assert events["budget"]["left"] == 0
        with pytest.raises(BudgetExhausted) as refused:
            engine.privacy.release("event_counts", 0.1)
        assert refused.value.status == 409 and refused.value.extra["left"] == 0
        state = engine.privacy.budget()
        assert state["spent"] == 30.0 and [r["release"] for r in state["ledger"]] == ["segment_sizes", "event_counts"]
        for bad in (lambda: engine.privacy.release("everything", 1.0), lambda: engine.privacy.release(
                "segment_sizes", -1.0), lambda: engine.privacy.release("segment_sizes", 1.0, k=-2)):
            with pytest.raises(ValidationFailed):
                bad()
        assert engine.privacy.budget()["spent"] == 30.0       # refused releases spent nothing


def test_release_over_http_and_the_cli(project):
    server = start_server(project)
    try:
        with server.client() as c:
            assert c.post("/v1/identify", auth=(server.write_key, ""), json={"userId": "a", "traits": {"plan": "pro"}}
                          ).status_code == 200
            r = c.post("/v1/admin/privacy/release", headers=server.admin, params={"fresh": "true"},
                       json={"report": "segment_sizes", "epsilon": 1.0})
            assert r.status_code == 200 and r.json()["budget"]["left"] == 29.0 and r.json()["k"] == 5
            bad = c.post("/v1/admin/privacy/release", headers=server.admin, json={"report": "x", "epsilon": 0})
            assert bad.status_code == 400 and {d["path"] for d in bad.json()["error"]["details"]} == {
                "body.report", "body.epsilon"}
            over = c.post("/v1/admin/privacy/release", headers=server.admin,
                          json={"report": "event_counts", "epsilon": 29.5})
            assert over.status_code == 409 and over.json()["error"]["code"] == "privacy_budget_exhausted"
            assert c.get("/v1/privacy/budget", headers=server.admin).json()["spent"] == 1.0
        released = json.loads(run_cli("privacy", "release", "event_counts", "--epsilon", "0.5", "--json",
                                      project=project).stdout)
        assert released["budget"]["left"] == 28.5
        assert json.loads(run_cli("privacy", "budget", "--json", project=project).stdout)["spent"] == 1.5
    finally:
        stop_server(server)
