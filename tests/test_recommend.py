"""Recommendations: metrics and splits, each candidate generator, the business
rules, the ranker on MovieLens-100k under the published protocol, and the
whole path on the simulator (catalog, training, precomputed lists, the API
with reasons, cold start), checked against the simulated people's tastes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from personable import Engine
from personable.clock import SimulatedClock
from personable.errors import NotFound, ValidationFailed
from personable.recommend import generators as G
from personable.recommend.interactions import Interactions
from personable.recommend.metrics import ranking_metrics, stratified_split, temporal_split
from personable.recommend.rules import apply_rules

from conftest import OFFLINE_STORES, project_on

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_ranking_metrics_follow_the_published_definitions():
    top = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    truth = [{1, 3, 9}, {8}]
    m = ranking_metrics(top, truth, k=4, item_counts=np.ones(10) * 2, n_items=10)
    d = 1 / np.log2(np.arange(2, 6))
    assert m["users"] == 2
    assert m["precision@4"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert m["recall@4"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["ndcg@4"] == pytest.approx(((d[0] + d[2]) / d[:3].sum() + d[3] / d[0]) / 2)
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 3 + (1 / 4) / 1) / 2)      # / relevant items
    assert m["map@4"] == pytest.approx(((1 + 2 / 3) / 3 + (1 / 4) / 1) / 2)    # min(relevant, k) is the same here
    assert m["hit_rate@4"] == 1.0 and m["coverage"] == pytest.approx(0.8) and m["novelty"] == pytest.approx(0.0)
    skipped = ranking_metrics(top, [set(), {5}], k=2)
    assert skipped["users"] == 1 and skipped["precision@2"] == 0.5


def test_splits_are_per_user_and_the_temporal_one_never_looks_back():
    rows = pd.DataFrame({"user": ["a"] * 8 + ["b"] * 4, "item": list("abcdefgh") + list("abcd"),
                         "ts": pd.date_range("2026-01-01", periods=12, freq="D", tz="UTC")})
    train, test = stratified_split(rows, 0.75, seed=1)
    assert train.groupby("user").size().to_dict() == {"a": 6, "b": 3} and len(test) == 3
    assert not set(map(tuple, train[["user", "item"]].values)) & set(map(tuple, test[["user", "item"]].values))
    early, late = temporal_split(rows, 0.75)
    for user in ("a", "b"):
        assert early[early.user == user].ts.max() < late[late.user == user].ts.min()


def _toy() -> tuple[Interactions, pd.DataFrame]:
    """Two tastes: u0-u3 like books (i0-i2), u4-u7 like games (i3-i5); i6 is
    popular with everyone; u8 has seen only i0."""
    rows = []
    for u in range(4):
        rows += [(f"u{u}", f"i{i}", "Product Viewed") for i in (0, 1, 2)]
    for u in range(4, 8):
        rows += [(f"u{u}", f"i{i}", "Product Viewed") for i in (3, 4, 5)]
    rows += [(f"u{u}", "i6", "Order Completed") for u in range(8)] + [("u8", "i0", "Product Viewed")]
    frame = pd.DataFrame(rows, columns=["user", "item", "kind"])
    frame["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)), unit="h")
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(7)],
                          "name": ["mystery novel", "crime novel", "poetry book", "board game", "card game",
                                   "puzzle game", "gift card"],
                          "category": ["books"] * 3 + ["games"] * 3 + ["gifts"]})
    return Interactions.from_frame(frame), items


@pytest.mark.parametrize("make", [lambda: G.EASE(l2=1.0), lambda: G.CoOccurrence(), lambda: G.ALS(factors=4, iterations=30),
                                  lambda: G.ContentBased(), lambda: G.SameCategory()],
                         ids=["ease", "cooccurrence", "als", "content", "same_category"])
def test_personal_generators_recommend_the_users_taste(make):
    data, items = _toy()
    gen = make().fit(data, items)
    u8 = data.user_index("u8")
    top, scores = gen.recommend(data, np.array([u8]), 2, data.seen())
    names = set(data.items[top[0]])
    assert names <= {"i1", "i2", "i6"} and names & {"i1", "i2"}, names        # books, never games, never i0 again
    assert np.all(np.diff(scores[0]) <= 0)


def test_popularity_trending_recent_and_group_generators():
    data, items = _toy()
    pop = G.Popularity().fit(data, items)
    assert data.items[pop.recommend(data, np.array([0]), 1)[0][0, 0]] == "i6"
    # Trending: with a one-hour half-life only the latest interactions count.
    trending = G.Popularity(half_life_days=1 / 24).fit(data, items)
    assert data.items[trending.recommend(data, np.array([0]), 1)[0][0, 0]] in ("i0", "i6")
    groups = np.array(["b"] * 4 + ["g"] * 4 + [None])
    by_group = G.Popularity().fit(data, items, groups=groups)
    top, _ = by_group.recommend(data, np.array([5]), 4, data.seen(), groups=groups[[5]])   # u5 has seen every game: nothing left there but i0-i2
    assert set(data.items[top[0][top[0] >= 0]]) == {"i0", "i1", "i2"}
    recent = G.RecentlyViewed().fit(data, items)
    top, _ = recent.recommend(data, np.array([0]), 5)
    assert list(data.items[top[0][:4]]) == ["i6", "i2", "i1", "i0"] and top[0][4] == -1   # own items, newest first
    assert G.Popularity().fit(data).clone().__dict__ == {"half_life_days": None}


def test_generators_report_what_they_cannot_do():
    data, _ = _toy()
    with pytest.raises(ValueError, match="catalog"):
        G.ContentBased().fit(data, None)
    with pytest.raises(ValueError, match="max_items"):
        G.EASE(max_items=3).fit(data)
    with pytest.raises(ValueError, match="no interactions"):
        Interactions.from_frame(pd.DataFrame(columns=["user", "item", "kind"]))


def test_rules_filter_cap_and_diversify():
    items = [0, 1, 2, 3, 4, 5]
    scores = [6.0, 5.9, 5.8, 5.7, 1.0, 0.5]
    categories = np.array(["a", "a", "a", "a", "b", "c"])
    plain = apply_rules(items, scores, 4)
    assert plain == [0, 1, 2, 3]
    assert apply_rules(items, scores, 4, exclude={0}, in_stock=np.array([1, 0, 1, 1, 1, 1], bool)) == [2, 3, 4, 5]
    capped = apply_rules(items, scores, 4, categories=categories, max_per_category=2)
    assert capped == [0, 1, 4, 5]
    same = lambda chosen: (categories[chosen][:, None] == categories[chosen][None, :]).astype(float)  # noqa: E731
    diverse = apply_rules(items, scores, 3, diversity=0.7, pairwise=same)
    assert diverse[0] == 0 and {4, 5} & set(diverse)     # MMR brings other categories up
    assert apply_rules([], [], 3) == [] and apply_rules([-1], [1.0], 3) == []


def test_movielens_100k_under_the_published_protocol():
    """The Microsoft Recommenders comparison: per-user stratified random 75/25,
    top-10 of unseen items. Published nDCG@10: BiVAE 0.475, BPR 0.442,
    LightGCN 0.420, SAR 0.382. docs/benchmarks.md has the full table."""
    from personable.recommend.evaluate import evaluate_split
    from personable.recommend.movielens import load_movielens_100k
    from personable.recommend.ranker import CandidateRanker

    ml = load_movielens_100k()
    assert len(ml.ratings) == 100_000 and ml.ratings.user.nunique() == 943 and ml.ratings.item.nunique() == 1682
    train, test = stratified_split(ml.ratings.assign(weight=1.0), 0.75, seed=42)
    models = {"popularity": G.Popularity, "ease": G.EASE,
              "ranker": lambda: CandidateRanker([G.EASE(), G.ALS(), G.CoOccurrence(neighbours=200), G.Popularity(),
                                                 G.ContentBased(text_columns=("genres",)), G.SameCategory()])}
    result = evaluate_split(train, test, models, ml.items[["item_id", "genres", "category"]], ml.users)
    r = result["results"]
    assert result["users"] == 943
    assert 0.22 < r["popularity"]["ndcg@10"] < 0.27         # what popularity scores on this split
    assert r["ease"]["ndcg@10"] > 0.47
    assert r["ranker"]["ndcg@10"] >= 0.48, r["ranker"]      # the target, above BiVAE's 0.475
    assert r["ranker"]["precision@10"] > 0.41 and r["ranker"]["map"] > 0.14
    assert [row["model"] for row in result["leaderboard"]][0] == "ranker"
    assert result["leaderboard"][-1]["model"] == "popularity"


# -- the whole path on the simulator, on each offline store ---------------------------------------------
@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    return project_on(request, tmp_path)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from personable.simulator import StoreSpec, simulate

    return simulate(tmp_path_factory.mktemp("recommend-sim"), StoreSpec(customers=1500, days=45, seed=5))


@pytest.fixture(scope="module", params=OFFLINE_STORES)
def shop(request, tmp_path_factory, simulated):
    base, sim = tmp_path_factory.mktemp("recommend"), simulated
    project_on(request, base, "shop")
    import yaml

    raw = yaml.safe_load((base / "proj" / "personable.yaml").read_text())
    raw["recommend"]["placements"]["relevance_only"] = {"max_per_category": None, "diversity": 0.0}
    raw["recommend"]["placements"]["everything"] = {"n": 200, "exclude_purchased": False, "max_per_category": None,
                                                    "diversity": 0.0}
    # Quality is measured against the simulated truth of every simulated person, so
    # every event is kept and learned from (training asks a purpose the simulated
    # people never deny); what consent changes is tested in tests/test_consent.py.
    raw["privacy"] = {"collection_refused": "keep", "uses": {"training": "personalization"}}
    (base / "proj" / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(base / "proj", clock=SimulatedClock(START + timedelta(days=45))) as engine:
        engine.ingest(sim.events_path)
        engine.segments.compute()
        assert engine.recommend.import_catalog(sim.catalog_path)["items"] == 400
        trained = engine.recommend.train()
    return base, sim, trained


def test_training_registers_a_version_and_precomputes_every_profile(shop):
    base, _, trained = shop
    assert trained["version"] == 1 and trained["profiles"] > 1000 and trained["items"] == 400
    assert set(trained["generators"]) == {"als", "ease", "cooccurrence", "complementary", "content", "same_category",
                                          "trending", "popularity"} and trained["skipped"] == {}
    assert 0.2 < trained["candidate_recall"] <= 1
    with Engine(base / "proj") as engine:
        (version,) = engine.models.list()
        assert version["name"] == "recommend" and version["metrics"]["items"] == 400
        assert "importance" in version["metrics"]



def test_the_trained_model_files_hold_no_training_rows(shop):
    """The ranker file carried the interaction log, the catalog and the user
    table (8.6 MB here); now neither it nor the serving file holds a row per
    profile or per interaction."""
    import joblib
    from pathlib import Path

    from test_estimators import _no_rows

    base, _, trained = shop
    with Engine(base / "proj") as engine:
        (version,) = engine.models.list()
    ranker_file = Path(version["artifact"])
    for path in (ranker_file, ranker_file.with_name(ranker_file.stem + "-serving.joblib")):
        _no_rows(joblib.load(path), trained["profiles"], trained["interactions"])
    assert ranker_file.stat().st_size < 4_000_000


def test_recommendations_follow_the_simulated_tastes(shop):
    """The share of a customer's top 10 in their (hidden) favourite category,
    against their own history's share and what popularity would show them."""
    base, sim, _ = shop
    truth = pd.read_csv(sim.truth_path)[["customer_id", "favourite_category"]]
    catalog = pd.read_csv(sim.catalog_path).set_index("product_id").category
    ours, diverse, history, popular = [], [], [], []
    with Engine(base / "proj", clock=SimulatedClock(START + timedelta(days=45))) as engine:
        served = engine.recommend.served()
        log = engine.recommend._interactions()
        for customer, favourite in truth.sample(300, random_state=3).itertuples(index=False):
            try:
                got = engine.recommend.recommend(customer, "relevance_only", n=10)
            except NotFound:          # never signed up: no userId to look up by
                continue
            ours.append(np.mean([catalog[i["item_id"]] == favourite for i in got["items"]]))
            home = engine.recommend.recommend(customer, "home", n=10)    # capped at 3 per category, diversified
            diverse.append(np.mean([catalog[i["item_id"]] == favourite for i in home["items"]]))
            history.append(np.mean(log[log.user == got["profile_id"]].item.map(catalog) == favourite))
            popular.append(np.mean([served.categories[i] == favourite for i in served.popular[:10]]))
    assert len(ours) > 100
    ours, diverse, history, popular = map(np.mean, (ours, diverse, history, popular))
    assert ours > history and ours > 3 * popular and ours > 0.4, (ours, history, popular)
    assert popular < diverse <= 0.3 + 1e-9, diverse


def test_request_context_rules_and_cold_start(shop, tmp_path, copy_project):
    base, sim, _ = shop
    project = copy_project(base / "proj", tmp_path / "ctx")
    with Engine(project, clock=SimulatedClock(START + timedelta(days=45))) as engine:
        rec = engine.recommend
        someone = engine.sql("SELECT value FROM identities WHERE kind = 'user_id' ORDER BY value LIMIT 1").to_pylist()[0]["value"]
        plain = rec.recommend(someone, "home")
        assert plain["source"] == "precomputed" and len(plain["items"]) == 10
        assert all(i["reason"] and i["name"] for i in plain["items"])
        counts = pd.Series([i["category"] for i in plain["items"]]).value_counts()
        assert counts.max() <= 3                                        # home: max_per_category 3
        # Just viewed: its neighbours come first, said so; the cart's items are never shown.
        viewed = "sku-00007"
        fresh = rec.recommend(someone, "home", context={"viewed": [viewed], "cart": ["sku-00011"]})
        # Its neighbours move up, and say why. Where exactly they land depends on the trained model: a
        # fresh install on 2026-12-07 put the first one fourth where it had been in the top three (the code
        # of the day before did the same there), so a fixed rank would test one draw.
        before = {i["item_id"]: k for k, i in enumerate(plain["items"])}
        served = engine.recommend.served()
        reason = f"because you viewed {served.names[served.index[viewed]]}"
        moved = [(k, before.get(i["item_id"], len(plain["items"]))) for k, i in enumerate(fresh["items"])
                 if i["reason"] == reason]
        assert moved and all(now < then for now, then in moved) and min(now for now, _ in moved) < 5
        assert "sku-00011" not in {i["item_id"] for i in fresh["items"]}
        # The device in hand lifts the categories that do well on it.
        served = rec.served()
        neutral = rec.recommend(someone, "relevance_only", n=50, context={"device": "no-such-device"})["items"]
        top = {i["category"] for i in neutral[:10]}
        category = next(i["category"] for i in neutral[10:] if i["category"] not in top)   # just below the fold
        served.device_lift["kiosk"] = np.where(served.categories == category, 1.4, 0.7)
        kiosk = rec.recommend(someone, "relevance_only", n=50, context={"device": "kiosk"})["items"]
        share = lambda got: sum(i["category"] == category for i in got[:10])  # noqa: E731
        assert share(kiosk) > share(neutral), (category, share(kiosk), share(neutral))
        # Purchases: never again where exclude_purchased (the default); offered again where not.
        buyer = engine.sql("""SELECT profile_id FROM profile_events WHERE event = 'Order Completed'
                              GROUP BY profile_id ORDER BY max(timestamp) DESC LIMIT 1""").to_pylist()[0]["profile_id"]
        bought = {p["product_id"] for e in engine.profile(buyer, 50)["recent_events"] if e["event"] == "Order Completed"
                  for p in e["properties"]["products"]}
        assert not bought & {i["item_id"] for i in rec.recommend(buyer, n=200)["items"]}
        again = [i for i in rec.recommend(buyer, "everything")["items"] if i["reason"] == "buy again"]
        assert again and {i["item_id"] for i in again} <= bought
        # Out of stock: never shown once the catalog says so.
        first = plain["items"][0]["item_id"]
        out = tmp_path / "stock.csv"
        out.write_text(f"product_id,name,in_stock\n{first},{plain['items'][0]['name']},false\n")
        rec.import_catalog(out)                  # no retraining needed
        assert first not in {i["item_id"] for i in rec.recommend(someone, "home", n=20)["items"]}
        # A new visitor with a profile but no product history: what is popular.
        engine.send([{"type": "page", "anonymousId": "newcomer", "name": "Home",
                      "timestamp": (START + timedelta(days=44, hours=23)).isoformat()}])
        cold = rec.recommend("newcomer", n=5)
        assert cold["source"] in ("popular", "popular_in_segment") and len(cold["items"]) == 5
        assert cold["items"][0]["reason"].startswith("popular")
        with pytest.raises(NotFound, match="unknown placement"):
            rec.recommend(someone, "sidebar")
        with pytest.raises(ValidationFailed, match="n must be"):
            rec.recommend(someone, n=0)
        with pytest.raises(NotFound):
            rec.recommend("nobody@example.com")


def test_catalog_files_are_checked(tmp_path, engine):
    bad = tmp_path / "bad.csv"
    bad.write_text("title,price\nLamp,12\n")
    with pytest.raises(ValidationFailed, match="no id column"):
        engine.recommend.import_catalog(bad)
    bad.write_text("sku,price\nA1,twelve\n")
    with pytest.raises(ValidationFailed) as err:
        engine.recommend.import_catalog(bad)
    assert err.value.details[0].path == "price"
    with pytest.raises(ValidationFailed, match="no such catalog file"):
        engine.recommend.import_catalog(tmp_path / "missing.csv")
    with pytest.raises(ValidationFailed, match="nothing to learn from"):
        engine.recommend.train()
    with pytest.raises(NotFound, match="no recommender trained"):
        engine.recommend.served()
    good = tmp_path / "items.jsonl"
    good.write_text('{"item_id": "A1", "title": "Lamp", "price": 12, "colour": "red", "in_stock": "no"}\n')
    assert engine.recommend.import_catalog(good)["items"] == 1
    row = engine.sql("SELECT name, price, in_stock, attributes FROM items").to_pylist()[0]
    assert row["name"] == "Lamp" and row["price"] == 12 and row["in_stock"] is False
    assert json.loads(row["attributes"]) == {"colour": "red"}


def test_a_catalog_file_is_typed_whatever_columns_it_has(tmp_path):
    """Absent or empty columns are typed, not Arrow's null type: PostgreSQL
    cannot stage a column of that (import_catalog failed there on any file
    without, say, a brand)."""
    import pyarrow as pa

    from personable.recommend.catalog import read_catalog_file

    path = tmp_path / "ids.csv"
    path.write_text("sku,category\nA1,\nA2,\n")
    schema = read_catalog_file(path).schema
    types = dict(zip(schema.names, schema.types))
    assert types == {"item_id": pa.string(), "name": pa.string(), "category": pa.string(), "brand": pa.string(),
                     "price": pa.float64(), "description": pa.string(), "in_stock": pa.bool_(),
                     "attributes": pa.string()}


def test_recommendations_over_http_and_the_cli(shop, tmp_path, copy_project):
    from conftest import run_cli, start_server, stop_server, wait_for_job

    base, _, _ = shop
    project = copy_project(base / "proj", tmp_path / "served")
    board = json.loads(run_cli("recommend", "evaluate", "--json", project=project).stdout)
    models = {r["model"]: r for r in board["leaderboard"]}
    assert {"ranker", "popularity", "ease", "als"} <= set(models) and board["split"] == "temporal"
    assert models["ranker"]["ndcg@10"] > models["popularity"]["ndcg@10"]
    assert {"coverage", "novelty", "hit_rate@10", "map"} <= set(models["ranker"])
    with Engine(project) as engine:
        someone = engine.sql("SELECT profile_id FROM profiles WHERE order_count > 0 LIMIT 1").to_pylist()[0]["profile_id"]
    import yaml

    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["recommend"]["retrain_hours"] = 24          # serve retrains at start, then daily
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    server = start_server(project)
    try:
        with server.client() as http:
            job = wait_for_job(server, "recommend")
            assert job["runs"] == 1 and job["failures"] == 0, job
            versions = [v for v in http.get("/v1/models", headers=server.admin).json()["items"] if v["name"] == "recommend"]
            assert [v["version"] for v in versions] == [1, 2]
            got = http.get(f"/v1/recommendations/{someone}", params={"placement": "home", "n": 5, "device": "mobile"},
                           headers=server.admin)
            assert got.status_code == 200, got.text
            body = got.json()
            assert len(body["items"]) == 5 and {"item_id", "score", "reason", "name"} <= set(body["items"][0])
            assert http.get(f"/v1/recommendations/{someone}").status_code == 401
            assert http.get("/v1/recommendations/nobody", headers=server.admin).status_code == 404
            bad = http.get(f"/v1/recommendations/{someone}", params={"n": 0}, headers=server.admin)
            assert bad.status_code == 400
            assert "/v1/recommendations/{identifier}" in http.get("/openapi.json").json()["paths"]
        shown = run_cli("recommend", "show", someone, "--placement", "cart", "--json", project=project)
        assert len(json.loads(shown.stdout)["items"]) == 6     # through the running server
    finally:
        stop_server(server)


def test_catalog_prices_are_finite_and_bounded_like_revenue(tmp_path, engine):
    """A price of 1e308 or infinity is refused from a catalog file (as a
    revenue would be), and an event's out-of-bound price never reaches the catalog."""
    for value in ("1e308", "inf", "-inf", "1e16", "nan"):
        bad = tmp_path / "prices.csv"
        bad.write_text(f"sku,price\nA1,12\nA2,{value}\n")
        with pytest.raises(ValidationFailed) as err:
            engine.recommend.import_catalog(bad)
        assert err.value.details[0].path == "price", value
    edge = tmp_path / "edge.csv"
    edge.write_text("sku,price\nA1,1e15\nA2,-1e15\n")
    assert engine.recommend.import_catalog(edge)["items"] == 2
    engine.track("u1", "Product Viewed", {"product_id": "E1", "name": "Huge", "price": 1e308})
    engine.track("u1", "Product Viewed", {"product_id": "E2", "name": "Fine", "price": 9.5})
    prices = dict((r["item_id"], r["price"]) for r in engine.recommend.catalog()[["item_id", "price"]].to_dict("records"))
    assert prices["E2"] == 9.5 and (prices["E1"] is None or pd.isna(prices["E1"]))
