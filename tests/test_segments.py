"""Segments: the rule language (parsing, and the compiled query against the
Python reference on random profiles), live membership with history and bus
events, and the API / CLI surfaces."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from personable import Engine
from personable.adapters.duckdb.schema import migrate
from personable.clock import SimulatedClock
from personable.errors import ConfigError, ErrorList, ValidationFailed
from personable.segments.compile import members_expr
from personable.segments.rules import evaluate, parse_rule

from conftest import run_cli
from conftest import OFFLINE_STORES, project_on


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    """Every test here runs on each offline store."""
    return project_on(request, tmp_path)


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


# -- parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, path, problem", [
    ({"trait": "plan"}, "rule", "needs one comparison"),
    ({"trait": "plan", "eq": 1, "gt": 2}, "rule", "several comparisons"),
    ({"computed": "revenue", "gt": "lots"}, "rule.gt", "must be a number"),
    ({"event": "Order Completed", "within": "a month"}, "rule.within", "duration"),
    ({"event": "X", "count": {"gte": -1}}, "rule.count", "whole number"),
    ({"all": []}, "rule.all", "non-empty list"),
    ({"any": [{"trait": "a", "eq": 1}, {"nope": 1}]}, "rule.any[1]", "exactly one of"),
    ({"trait": "plan", "in": []}, "rule.in", "non-empty list"),
    ({"trait": "signup", "within": "3d"}, "rule.within", "time fields only"),
    ({"event": "X", "where": [{"prop": "a"}]}, "rule.where[0]", "property"),
    ({"event": "X", "colour": "red"}, "rule", "unknown key"),
])
def test_rule_errors_name_their_path(raw, path, problem):
    errors = ErrorList()
    assert parse_rule(raw, "rule", errors) is None
    assert any(e.path == path and problem in e.problem for e in errors.items), errors.items


def test_segment_config_errors(project):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = {"a": {"rule": {"in_segment": "b"}}, "b": {"rule": {"in_segment": "a"}},
                       "c": {"rule": {"in_segment": "nowhere"}}, "Bad-Id": {"rule": {"trait": "x", "exists": True}}}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        Engine(project)
    problems = {(d.path, d.problem.split(":")[0]) for d in err.value.details}
    assert ("segments", "segments depend on each other in a cycle") in problems
    assert any(p == "segments.c.rule" for p, _ in problems) and any(p == "segments.Bad-Id" for p, _ in problems)


# -- the compiled query agrees with the Python reference ----------------------------------------
scalars = st.one_of(st.sampled_from(["free", "pro", "GB", "US", "x1", ""]), st.integers(-3, 300),
                    st.sampled_from([2.5, 99.5, 150.25, -0.5]), st.booleans())
numbers = st.one_of(st.integers(-3, 300), st.sampled_from([2.5, 99.5, 150.25]))


def comparisons(values=scalars):
    return st.one_of(
        st.tuples(st.sampled_from(["eq", "ne"]), values),
        st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), numbers),
        st.tuples(st.sampled_from(["in", "not_in"]), st.lists(values, min_size=1, max_size=3)),
        st.tuples(st.just("between"), st.lists(st.integers(-5, 300), min_size=2, max_size=2).map(sorted)),
        st.tuples(st.sampled_from(["contains", "starts_with"]), st.sampled_from(["r", "G", "1", "x"])),
        st.tuples(st.just("exists"), st.booleans()),
    )


def leaf():
    trait = st.tuples(st.sampled_from(["plan", "age", "country"]), comparisons()).map(
        lambda t: {"trait": t[0], t[1][0]: t[1][1]})
    computed = st.one_of(
        st.tuples(st.sampled_from(["revenue", "event_count", "rfm_segment"]), comparisons()).map(
            lambda t: {"computed": t[0], t[1][0]: t[1][1]}),
        st.tuples(st.sampled_from(["within", "older_than"]), st.sampled_from(["1d", "10d", "40d"])).map(
            lambda t: {"computed": "last_seen", t[0]: t[1]}))
    event = st.builds(
        lambda name, etype, count, window, where: {
            **({"event": name} if etype == "track" else {"type": etype}), "count": {count[0]: count[1]},
            **({"within": window} if window else {}), **({"where": where} if where else {})},
        st.sampled_from(["A", "B"]), st.sampled_from(["track", "track", "page"]),
        st.tuples(st.sampled_from(["eq", "gte", "lte", "gt", "lt", "ne"]), st.integers(0, 3)),
        st.sampled_from([None, "7d", "30d"]),
        st.lists(st.tuples(st.sampled_from(["price", "tag"]), comparisons()).map(
            lambda t: {"property": t[0], t[1][0]: t[1][1]}), max_size=1))
    member = st.just({"in_segment": "seg1"})
    return st.one_of(trait, computed, event, member)


rules = st.recursive(leaf(), lambda children: st.one_of(
    st.lists(children, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
    st.lists(children, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
    children.map(lambda x: {"not": x})), max_leaves=6)

event_st = st.builds(lambda etype, name, days, props: {
    "type": etype, "event": name if etype == "track" else None,
    "timestamp": NOW - timedelta(days=days), "properties": props},
    st.sampled_from(["track", "page"]), st.sampled_from(["A", "B"]), st.integers(-2, 45),
    st.dictionaries(st.sampled_from(["price", "tag"]), st.one_of(scalars, st.none()), max_size=2))
profile_st = st.builds(lambda traits, computed, events, member, seen: {
    "traits": traits, "computed": {**computed, "last_seen": NOW - timedelta(days=seen)}, "events": events,
    "segments": {"seg1"} if member else set()},
    st.dictionaries(st.sampled_from(["plan", "age", "country"]), scalars, max_size=3),
    st.fixed_dictionaries({"revenue": numbers, "event_count": st.integers(0, 50)},
                          optional={"rfm_segment": st.sampled_from(["Champions", "Lost", "At Risk"])}),
    st.lists(event_st, max_size=5), st.booleans(), st.integers(0, 60))


def _load(con: duckdb.DuckDBPyConnection, profiles: list[dict]) -> None:
    for table in ("profiles", "profile_traits", "computed_traits", "events", "segment_members"):
        con.execute(f"DELETE FROM {table}")
    for i, p in enumerate(profiles):
        pid = f"p{i}"
        c = p["computed"]
        con.execute("INSERT INTO profiles (profile_id, created_at, last_seen, event_count, revenue) VALUES (?, ?, ?, ?, ?)",
                    [pid, NOW, c["last_seen"], c["event_count"], c["revenue"]])
        for k, v in p["traits"].items():
            con.execute("INSERT INTO profile_traits (profile_id, key, value, observed_at) VALUES (?, ?, ?, ?)",
                        [pid, k, orjson.dumps(v).decode(), NOW])
        if "rfm_segment" in c:
            con.execute("INSERT INTO computed_traits VALUES (?, 'rfm_segment', ?, ?)",
                        [pid, orjson.dumps(c["rfm_segment"]).decode(), NOW])
        for j, e in enumerate(p["events"]):
            con.execute("""INSERT INTO events (message_id, type, event, profile_id, timestamp, received_at, properties, source)
                           VALUES (?, ?, ?, ?, ?, ?, ?, 'test')""",
                        [f"{pid}-{j}", e["type"], e["event"], pid, e["timestamp"], NOW, orjson.dumps(e["properties"]).decode()])
        if p["segments"]:
            con.execute("INSERT INTO segment_members VALUES ('seg1', ?, ?)", [pid, NOW])


@pytest.fixture(scope="module")
def rule_db():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    return con


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=rules, profiles=st.lists(profile_st, min_size=1, max_size=5))
def test_compiled_rules_agree_with_the_python_reference(rule_db, raw, profiles):
    import ibis

    errors = ErrorList()
    rule = parse_rule(raw, "rule", errors)
    assert rule is not None, errors.items
    _load(rule_db, profiles)
    sql = str(ibis.to_sql(members_expr(rule, NOW), dialect="duckdb"))
    got = {r[0] for r in rule_db.execute(sql).fetchall()}
    want = {f"p{i}" for i, p in enumerate(profiles) if evaluate(rule, p, NOW)}
    assert got == want, (raw, sql)


# -- live membership ----------------------------------------------------------------------------------
SEGMENTS = {
    "big_spenders": {"name": "Big spenders", "rule": {"computed": "revenue", "gt": 100}},
    "high_value_at_risk": {"name": "High-value customers at risk", "rule": {"all": [
        {"in_segment": "big_spenders"},
        {"event": "Order Completed", "count": {"gte": 2}, "within": "90d"},
        {"not": {"event": "Order Completed", "within": "14d"}}]}},
    "uk": {"rule": {"trait": "country", "eq": "GB"}},
}


@pytest.fixture
def seg_project(project):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = SEGMENTS
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def _order(user: str, at: datetime, revenue: float, n: int) -> dict:
    return {"type": "track", "userId": user, "event": "Order Completed", "timestamp": at.isoformat(),
            "messageId": f"{user}-o{n}", "properties": {"order_id": f"{user}-{n}", "revenue": revenue}}


def test_a_customer_enters_and_leaves_as_events_arrive_and_time_passes(seg_project):
    clock = SimulatedClock(NOW)
    seen = []
    with Engine(seg_project, clock=clock) as engine:
        engine.bus.subscribe("segment.entered", lambda m: seen.append(("in", m["segment_id"], m["profile_id"], m["cause"])))
        engine.bus.subscribe("segment.exited", lambda m: seen.append(("out", m["segment_id"], m["profile_id"], m["cause"])))
        engine.refresh_online()
        engine.segments.refresh()
        engine.send([_order("ann", NOW - timedelta(days=40), 80.0, 1)])
        pid = engine.resolve("ann")
        assert [s["segment_id"] for s in engine.profile("ann")["segments"]] == []
        engine.send([_order("ann", NOW - timedelta(days=20), 60.0, 2)])     # realtime: she enters both
        assert {s["segment_id"] for s in engine.profile("ann")["segments"]} == {"big_spenders", "high_value_at_risk"}
        assert ("in", "high_value_at_risk", pid, "event") in seen
        engine.send([_order("ann", NOW - timedelta(hours=1), 30.0, 3)])      # a fresh order: no longer at risk
        assert {s["segment_id"] for s in engine.profile("ann")["segments"]} == {"big_spenders"}
        clock.advance(timedelta(days=20))                                   # time alone: at risk again...
        assert {s["segment_id"] for s in engine.profile("ann")["segments"]} == {"big_spenders"}
        result = engine.segments.refresh()                                  # ...once the scheduled refresh runs
        assert {s["segment_id"] for s in engine.profile("ann")["segments"]} == {"big_spenders", "high_value_at_risk"}
        assert next(r for r in result["segments"] if r["segment_id"] == "high_value_at_risk")["entered"] == 1
        history = engine.segments.history(profile="ann", segment_id="high_value_at_risk")
        assert [(h["entered_by"], h["exited_by"]) for h in history] == [("refresh", None), ("event", "event")]
        show = engine.segments.show("high_value_at_risk")
        assert show["size"] == 1 and [s["size"] for s in show["sizes"]][-3:] == [1, 0, 1]
        assert show["time_dependent"] and show["depends_on"] == ["big_spenders"]


def test_api_segments_create_members_export(seg_project, tmp_path):
    with Engine(seg_project, clock=SimulatedClock(NOW)) as engine:
        # Consent for the export's purpose (advertising): UK profiles are opt-in (docs/privacy.md).
        engine.send([{"type": "identify", "userId": f"u{i}", "traits": {"country": "GB" if i % 2 else "US",
                                                                       "consent": {"Advertising": True}},
                      "timestamp": NOW.isoformat()} for i in range(10)])
        engine.segments.refresh()
        created = engine.segments.create("uk_big", {"name": "UK big", "rule": {"all": [
            {"in_segment": "uk"}, {"trait": "country", "ne": "US"}]}})
        assert created["size"] == 5 and created["origin"] == "api"
        with pytest.raises(ValidationFailed) as err:
            engine.segments.create("bad", {"rule": {"in_segment": "missing"}})
        assert err.value.details[0].path == "segments.bad.rule"
        with pytest.raises(ValidationFailed):
            engine.segments.delete("uk")                                    # defined in personable.yaml
        page = engine.segments.members("uk", limit=3, offset=0)
        assert len(page) == 3 and len(engine.segments.members("uk", limit=3, offset=3)) == 2
        out = engine.segments.export("uk", str(tmp_path / "uk.parquet"))
        table = pq.read_table(tmp_path / "uk.parquet")
        assert out["members"] == 5 and table.num_rows == 5 and "user_ids" in table.column_names
        engine.segments.export("uk", str(tmp_path / "uk.csv"))
        assert (tmp_path / "uk.csv").read_text().count("\n") == 6
        engine.segments.delete("uk_big")
        assert "uk_big" not in {s["segment_id"] for s in engine.segments.list()}


def test_segments_over_http_and_cli(seg_project, server, tmp_path):
    with server.client() as http:
        batch = [{"type": "identify", "userId": f"u{i}", "traits": {"country": "GB"}} for i in range(3)]
        assert http.post("/v1/batch", json={"batch": batch}, auth=(server.write_key, "")).status_code == 200
        listing = http.get("/v1/segments", headers=server.admin, params={"fresh": "true"}).json()["items"]
        assert {s["segment_id"] for s in listing} == set(SEGMENTS)
        uk = http.get("/v1/segments/uk", headers=server.admin).json()
        assert uk["size"] == 3
        members = http.get("/v1/segments/uk/members", headers=server.admin, params={"limit": 2}).json()
        assert len(members["items"]) == 2
        profile = http.get("/v1/profiles/u1", headers=server.admin).json()
        assert [s["segment_id"] for s in profile["segments"]] == ["uk"]
        made = http.put("/v1/segments/gb_copy", headers=server.admin, json={"rule": {"in_segment": "uk"}})
        assert made.status_code == 200 and made.json()["size"] == 3
        bad = http.put("/v1/segments/x", headers=server.admin, json={"rule": {"trait": "a"}})
        assert bad.status_code == 400 and bad.json()["error"]["details"][0]["path"] == "segment.rule"
        assert http.get("/v1/segments/nope", headers=server.admin).status_code == 404
        assert http.get("/v1/segments").status_code == 401
        jobs = http.get("/healthz").json()["jobs"]     # the scheduler refreshed at start, and will again
        assert jobs[0]["job"] == "segments" and jobs[0]["runs"] >= 1 and jobs[0]["failures"] == 0
    out = json.loads(run_cli("segments", "list", "--json", project=seg_project).stdout)
    assert {s["segment_id"] for s in out} >= set(SEGMENTS)
    refreshed = json.loads(run_cli("segments", "refresh", "--json", project=seg_project).stdout)
    assert {r["segment_id"] for r in refreshed["segments"]} >= set(SEGMENTS)
    shown = run_cli("segments", "show", "uk", project=seg_project).stdout
    assert "uk" in shown and "3" in shown
    run_cli("segments", "export", "uk", str(tmp_path / "uk.csv"), project=seg_project)
    assert (tmp_path / "uk.csv").exists()


# -- RFM and lifecycle ------------------------------------------------------------------------------------
def _orders(user: str, days_ago: list[int], revenue: float) -> list[dict]:
    return [_order(user, NOW - timedelta(days=d), revenue, n) for n, d in enumerate(days_ago)]


def test_rfm_scores_and_named_segments(project):
    clock = SimulatedClock(NOW)
    with Engine(project, clock=clock) as engine:
        events = []
        events += _orders("champ", [1, 5, 9, 12, 20], 300.0)           # recent, frequent, big
        events += _orders("lost", [300], 5.0)                           # long ago, once, small
        events += _orders("cantlose", [250, 260, 270, 280, 290, 295], 400.0)  # big and frequent, but gone
        for i in range(12):                                             # a population to take quintiles over
            events += _orders(f"c{i}", [10 * i + 3] * 1 + [10 * i + 40] * (i % 3), 20.0 + 10 * i)
        events.append({"type": "identify", "userId": "browser", "traits": {"email": "b@example.com"}})
        engine.send(events)
        result = engine.segments.compute()
        assert result["customers_scored"] == 15
        doc = {u: engine.profile(u)["computed"] for u in ("champ", "lost", "cantlose", "browser")}
        assert doc["champ"]["rfm_segment"] == "Champions" and doc["champ"]["rfm_score"] == "555"
        assert doc["lost"]["rfm_segment"] == "Lost" and doc["lost"]["rfm_r"] == 1
        assert doc["cantlose"]["rfm_segment"] == "Can't Lose Them"
        assert doc["champ"]["rfm_frequency"] == 5 and doc["champ"]["rfm_monetary"] == 1500.0
        assert doc["champ"]["rfm_recency_days"] == pytest.approx(1.0)
        assert "rfm_segment" not in doc["browser"] and doc["browser"]["lifecycle_stage"] == "prospect"
        names = {r["value"] for r in result["rfm_segments"]}
        assert names <= {"Champions", "Loyal", "Potential Loyalist", "New", "Promising", "Need Attention",
                         "About to Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost"}


def test_lifecycle_stages_and_transitions(project):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["lifecycle"] = {"new_days": 30, "active_days": 60, "lapsed_days": 120, "loyal_orders": 3, "reactivated_days": 30}
    raw["segments"] = {"at_risk": {"rule": {"computed": "lifecycle_stage", "eq": "at_risk"}}}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    clock = SimulatedClock(NOW)
    with Engine(project, clock=clock) as engine:
        engine.send(_orders("ann", [100, 90, 80], 10.0) + _orders("bob", [10], 10.0) + _orders("cy", [200], 10.0)
                    + _orders("dee", [50, 45, 40], 10.0) + _orders("eve", [300, 5], 10.0))
        engine.segments.compute()
        stage = {u: engine.profile(u)["computed"]["lifecycle_stage"] for u in ("ann", "bob", "cy", "dee", "eve")}
        assert stage == {"ann": "at_risk", "bob": "new", "cy": "lapsed", "dee": "loyal", "eve": "reactivated"}
        engine.segments.refresh()
        assert [m["profile_id"] for m in engine.segments.members("at_risk")] == [engine.resolve("ann")]
        clock.advance(timedelta(days=50))                 # her last order is now 130 days old...
        engine.send([_order("ann", clock.now(), 10.0, 9)])  # ...and she comes back
        engine.segments.compute()
        assert engine.profile("ann")["computed"]["lifecycle_stage"] == "reactivated"
        moves = engine.segments.transitions("ann", "lifecycle_stage")
        assert [(m["value"], m["until"] is None) for m in moves] == [("at_risk", False), ("reactivated", True)]
        assert moves[0]["until"] == clock.now().isoformat()
        with pytest.raises(ConfigError):
            raw["lifecycle"] = {"active_days": 500, "lapsed_days": 100, "weekly": 1}
            (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
            Engine(project)


def test_rfm_table_is_configurable(project):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["rfm"] = {"segments": [{"name": "Best", "r": [4, 5], "fm": [4, 5]}, {"name": "Rest", "r": [1, 5], "fm": [1, 5]}]}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        engine.send(_orders("a", [1, 2, 3, 4], 500.0) + _orders("b", [200], 5.0))
        assert {r["value"] for r in engine.segments.compute()["rfm_segments"]} == {"Best", "Rest"}
    raw["rfm"] = {"segments": [{"name": "Broken", "r": [0, 9], "fm": [2]}]}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        Engine(project)
    assert {d.path for d in err.value.details} == {"rfm.segments[0].r", "rfm.segments[0].fm"}
