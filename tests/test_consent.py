"""Consent per purpose (issue: privacy, point 1): where consent comes from, the
one policy every use asks, its refusals, and the uses that obey it --
recommendations, segment exports, model training and scoring -- on every
offline store, through the Python API, the CLI and a real HTTP server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import OFFLINE_STORES, project_on, run_cli, start_server, stop_server
from personable import Engine
from personable.clock import SimulatedClock
from personable.config import load_config
from personable.errors import ConfigError, NotFound, ValidationFailed
from personable.privacy.config import PrivacySection
from personable.privacy.consent import ConsentPolicy

NOW = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)
T = "2026-11-01T10:00:00Z"


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    return project_on(request, tmp_path)


def _configure(project: Path, **privacy) -> Path:
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["privacy"] = privacy
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


# -- the policy ------------------------------------------------------------------------------
def test_the_policy_decides_by_record_then_by_the_regions_default():
    policy = ConsentPolicy(PrivacySection())
    assert policy.decide("advertising", {"advertising": {"granted": True}}, "DE").reason == "granted"
    assert policy.decide("advertising", {"advertising": False}, "US").as_dict() == {
        "purpose": "advertising", "allowed": False, "reason": "denied", "region": "*"}
    assert policy.decide("advertising", {}, "de").as_dict() == {      # EU: opt-in
        "purpose": "advertising", "allowed": False, "reason": "default_deny", "region": "eu"}
    assert policy.decide("advertising", {}, "US").reason == "default_allow"   # elsewhere: opt-out
    assert policy.decide("advertising", {}, None).region == "*"
    cautious = ConsentPolicy(PrivacySection(unknown_country_region="eu", defaults={"analytics": {"eu": True}}))
    assert cautious.decide("advertising", {}, None).as_dict()["reason"] == "default_deny"   # no default: opt-in
    assert cautious.decide("analytics", {}, "").region == "eu"
    doc = {"traits": {"country": {"value": "FR"}}, "consents": {"personalization": {"granted": False}}}
    assert policy.for_document("personalization", doc).reason == "denied"
    assert policy.for_document("marketing_email", doc).reason == "default_deny"


@pytest.mark.parametrize("privacy, path", [
    ({"categories": {"Ads": ["adverts"]}}, "privacy.categories.Ads[0]"),
    ({"gpc_denies": ["selling"]}, "privacy.gpc_denies[0]"),
    ({"defaults": {"analytics": {"asia": True}}}, "privacy.defaults.analytics.asia"),
    ({"regions": {"eu": ["Germany"]}}, "privacy.regions.eu[0]"),
    ({"regions": {"eu": ["DE"], "dach": ["DE"]}}, "privacy.regions.dach[0]"),
    ({"uses": {"recommendations": "profiling"}}, "privacy.uses.recommendations"),
    ({"unknown_country_region": "mars"}, "privacy.unknown_country_region"),
])
def test_privacy_config_errors_name_their_path(tmp_path, privacy, path):
    from personable.config import write_starter

    write_starter(tmp_path / "p")
    with pytest.raises(ConfigError) as err:
        load_config(_configure(tmp_path / "p", **privacy))
    assert path in [d.path for d in err.value.details], err.value.details


def test_the_bulk_rule_gives_the_same_verdicts_as_the_one_for_a_document(project):
    """The Ibis form (exports, models) and the Python form (the request path) of one rule."""
    from personable.tables import PROFILES

    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        people = [("de_granted", "DE", {"advertising": True}), ("de_denied", "DE", {"advertising": False}),
                  ("de_unknown", "de ", {}), ("us_unknown", "US", {}), ("nowhere", None, {}),
                  ("us_denied", "US", {"advertising": False}), ("cat_granted", "FR", {"Advertising": True})]
        engine.send([{"type": "identify", "userId": u, "timestamp": T,
                      "traits": {**({"country": c} if c else {}), **({"consent": k} if k else {})}}
                     for u, c, k in people])
        for purpose in engine.components.policy.settings.purposes:
            bulk = engine.store.execute(engine.components.policy.verdicts(purpose, PROFILES)).to_pylist()
            by_pid = {r["profile_id"]: (r["allowed"], r["reason"], r["region"]) for r in bulk}
            for user, _, _ in people:
                doc = engine.profile(user)
                one = engine.components.policy.for_document(purpose, doc)
                assert by_pid[doc["profile_id"]] == (one.allowed, one.reason, one.region), (purpose, user)
        assert engine.privacy.consent("cat_granted")["verdicts"]["advertising"]["reason"] == "granted"


# -- where consent comes from ------------------------------------------------------------------
def test_consent_arrives_by_context_event_traits_gpc_and_api_with_its_history(project):
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        # Segment's consent categories, mapped onto purposes (Marketing: email and SMS).
        engine.page("ann", "Home", timestamp=T, context={"consent": {"categoryPreferences": {
            "Marketing": True, "Analytics": True, "DataSharing": True}}})
        consents = engine.profile("ann")["consents"]
        assert {p: c["granted"] for p, c in consents.items()} == {
            "marketing_email": True, "marketing_sms": True, "analytics": True, "sale_or_share": True}
        # Segment's Consent Preference Updated event, later: withdraws marketing.
        engine.track("ann", "Segment Consent Preference Updated", timestamp="2026-11-01T11:00:00Z",
                     context={"consent": {"categoryPreferences": {"Marketing": False}}})
        # A purpose named as such wins over a category mapped onto it, in one event.
        engine.identify("ann", {"consent": {"Marketing": True, "marketing_sms": False}},
                        timestamp="2026-11-01T12:00:00Z")
        # A Global Privacy Control signal withdraws sale/share even when the banner says yes.
        engine.page("ann", "Shop", timestamp="2026-11-01T13:00:00Z", context={"consent": {
            "gpc": True, "categoryPreferences": {"DataSharing": True}}})
        consents = engine.profile("ann")["consents"]
        assert {p: c["granted"] for p, c in consents.items()} == {
            "marketing_email": True, "marketing_sms": False, "analytics": True, "sale_or_share": False}
        # The API, with its source and policy version.
        result = engine.privacy.set_consent("ann", {"sale_or_share": True, "personalization": False},
                                            source="preference-center", policy_version="2026-11")
        assert result["verdicts"]["sale_or_share"]["reason"] == "granted"
        assert result["verdicts"]["personalization"] == {"purpose": "personalization", "allowed": False,
                                                         "reason": "denied", "region": "*"}
        assert engine.profile("ann")["consents"]["personalization"]["granted"] is False   # the online document too
        history = engine.privacy.consent("ann", history=100)["history"]
        sale = [(h["granted"], h["via"]) for h in history if h["purpose"] == "sale_or_share"]   # newest first
        assert sale[0] == (True, "api") and sorted(sale[1:]) == [(False, "gpc"), (True, "context"), (True, "context")]
        api = [h for h in history if h["via"] == "api"]
        assert {(h["source"], h["policy_version"]) for h in api} == {("preference-center", "2026-11")}
        assert {h["policy_version"] for h in history if h["via"] != "api"} == {"1"}
        assert {h["via"] for h in history} == {"api", "gpc", "context", "traits"}
        # An event older than the API's change does not undo it.
        engine.identify("ann", {"consent": {"personalization": True}}, timestamp="2026-11-01T14:00:00Z")
        assert engine.profile("ann")["consents"]["personalization"]["granted"] is False
        with pytest.raises(ValidationFailed):
            engine.privacy.set_consent("ann", {"profiling": True})
        with pytest.raises(ValidationFailed):
            engine.privacy.set_consent("ann", {})
        with pytest.raises(NotFound):
            engine.privacy.set_consent("nobody", {"analytics": True})


# -- collection --------------------------------------------------------------------------------------
DENIES = {"consent": {"categoryPreferences": {"Analytics": False}}}


@pytest.mark.parametrize("mode", ["minimize", "drop", "keep"])
def test_a_profile_that_denies_analytics_has_its_events_minimized_dropped_or_kept(project, tmp_path, mode):
    _configure(project, collection_refused=mode)
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        first = engine.page("ann", "Home", timestamp=T, context=DENIES, messageId="ann-1")
        engine.identify("ann", {"email": "ann@example.com", "plan": "pro"}, timestamp="2026-11-01T10:05:00Z",
                        messageId="ann-2")
        engine.track("bob", "Order Completed", {"order_id": "b1", "revenue": 20.0}, timestamp=T, messageId="bob-1")
        # A file import goes the same way (the bulk path on DuckDB).
        lines = [{"type": "track", "userId": "ann", "event": "Order Completed", "timestamp": "2026-11-01T11:00:00Z",
                  "messageId": "ann-3", "properties": {"order_id": "a1", "revenue": 30.0},
                  "context": {"ip": "192.0.2.7", "userAgent": "Mozilla/5.0"}}]
        (tmp_path / "more.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
        imported = engine.ingest(tmp_path / "more.jsonl")
        ann = engine.profile("ann")
        stored = engine.sql("SELECT message_id FROM events ORDER BY message_id").column("message_id").to_pylist()
        minimized = engine.sql("SELECT * FROM events_minimized ORDER BY message_id").to_pylist()
        # The profile exists whatever the mode: it holds the consent, the identity and the traits.
        assert ann["consents"]["analytics"]["granted"] is False and ann["traits"]["plan"] == "pro"
        assert engine.resolve("email:ann@example.com") == ann["profile_id"]
        counts = {(c["use"], c["reason"]): c["count"] for c in engine.privacy.refusal_counts()}
        if mode == "keep":
            assert first.refused_collection == 0 and imported.refused_collection == 0
            assert stored == ["ann-1", "ann-2", "ann-3", "bob-1"] and minimized == []
            assert ann["computed"]["order_count"] == 1 and counts == {}
            return
        assert first.refused_collection == 1 and imported.refused_collection == 1
        assert stored == ["bob-1"]
        assert ann["computed"]["event_count"] == 0 and ann["computed"]["revenue"] == 0 and not ann["recent_events"]
        assert counts == {("collection", "denied"): 3}
        if mode == "drop":
            assert minimized == []
        else:
            assert [m["message_id"] for m in minimized] == ["ann-1", "ann-2", "ann-3"]
            assert [(m["type"], m["name"] or m["event"], m["revenue_reporting"]) for m in minimized] == [
                ("page", "Home", None), ("identify", None, None), ("track", "Order Completed", 30.0)]
            kept = json.dumps([{k: v for k, v in m.items() if k != "message_id"} for m in minimized], default=str)
            assert '"ann"' not in kept and "192.0.2" not in kept and "Mozilla" not in kept
        again = engine.page("ann", "Home", timestamp=T, context=DENIES, messageId="ann-1")   # a retry
        assert again.duplicates == (1 if mode == "minimize" else 0)
        # Consent given: what comes after is collected again.
        engine.privacy.set_consent("ann", {"analytics": True})
        engine.page("ann", "Later", timestamp="2026-11-03T10:00:00Z", messageId="ann-4")
        assert engine.profile("ann")["computed"]["event_count"] == 1


def test_a_future_stamped_event_cannot_outrank_a_later_withdrawal(project):
    """Timestamps may run up to events.max_future_skew_hours ahead; a consent counts from
    when it was received at the latest, so a withdrawal made after it arrived wins."""
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        engine.identify("ann", {"consent": {"advertising": True}}, timestamp=(NOW + timedelta(hours=20)).isoformat())
        assert engine.profile("ann")["consents"]["advertising"]["observed_at"].startswith(NOW.date().isoformat())
        engine.components.clock.advance(timedelta(minutes=1))
        engine.privacy.set_consent("ann", {"advertising": False})
        assert engine.profile("ann")["consents"]["advertising"]["granted"] is False


# -- the uses ------------------------------------------------------------------------------------------
def _shop(engine: Engine, n: int = 40) -> None:
    events = []
    for i in range(n):
        user = f"u{i}"
        events.append({"type": "identify", "userId": user, "timestamp": T, "traits": {"country": "US"}})
        for j in range(3):
            item = f"sku{(i + j) % 8}"
            events.append({"type": "track", "userId": user, "event": "Product Viewed", "timestamp": T,
                           "messageId": f"{user}-v{j}", "properties": {"product_id": item}})
        events.append({"type": "track", "userId": user, "event": "Order Completed", "timestamp": T,
                       "messageId": f"{user}-o", "properties": {"order_id": f"{user}-o", "revenue": 10.0 + i,
                                                                 "products": [{"product_id": f"sku{i % 8}"}]}})
    engine.send(events)


def test_recommendations_for_a_profile_without_personalization_consent_are_not_personal(project):
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        _shop(engine)
        engine.recommend.train()
        personal = engine.recommend.recommend("u1")
        assert personal["consent"]["allowed"] and personal["source"] == "precomputed"
        engine.privacy.set_consent("u1", {"personalization": False})
        refused = engine.recommend.recommend("u1", context={"cart": ["sku3"]})
        assert refused["consent"] == {"purpose": "personalization", "allowed": False, "reason": "denied",
                                      "region": "*"}
        assert refused["source"] == "popular" and refused["items"]
        assert "sku3" not in [i["item_id"] for i in refused["items"]]      # the request's own cart still counts
        assert {i["reason"] for i in refused["items"]} <= {"popular right now", "goes with sku3 in your cart"}
        counts = engine.privacy.refusal_counts()
        assert counts == [{"use": "recommendations", "purpose": "personalization", "reason": "denied", "count": 1}]
        assert engine.privacy.refusal_counts(NOW + timedelta(seconds=1)) == []


def test_the_recommender_learns_only_from_profiles_that_allow_training(project):
    _configure(project, uses={"training": "marketing_email"})
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        _shop(engine)
        engine.privacy.set_consent("u2", {"marketing_email": False})
        trained = engine.recommend.train()
        assert trained["profiles"] == 39                         # u2's interactions are not learned from
        mine = engine.recommend.recommend("u2")
        assert mine["consent"]["allowed"] and mine["source"] != "precomputed"   # no list was made from them
        assert engine.recommend.recommend("u3")["source"] == "precomputed"
        assert [(c["use"], c["purpose"], c["count"]) for c in engine.privacy.refusal_counts()] == [
            ("training", "marketing_email", 1)]


def test_segment_exports_leave_out_who_did_not_consent_to_the_exports_purpose(project, tmp_path):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = {"everyone": {"rule": {"trait": "plan", "eq": "pro"}}}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        engine.send([{"type": "identify", "userId": u, "timestamp": T, "traits": {"plan": "pro", **t}} for u, t in [
            ("us_quiet", {"country": "US"}), ("us_no", {"country": "US", "consent": {"advertising": False}}),
            ("de_quiet", {"country": "DE"}), ("de_yes", {"country": "DE", "consent": {"Advertising": True}})]])
        engine.segments.refresh()
        out = engine.segments.export("everyone", str(tmp_path / "e.parquet"))
        exported = pq.read_table(tmp_path / "e.parquet").column("user_ids").to_pylist()
        assert sorted(exported) == ["de_yes", "us_quiet"]
        assert out["members"] == 2 and out["refused"] == 2 and out["purpose"] == "advertising"
        assert {(c["reason"], c["count"]) for c in engine.privacy.refusal_counts()} == {
            ("denied", 1), ("default_deny", 1)}
        engine.segments.export("everyone", str(tmp_path / "e.csv"))
        assert (tmp_path / "e.csv").read_text().count("\n") == 3


# -- over HTTP and the CLI ----------------------------------------------------------------------------------
def test_consent_over_http_gpc_header_and_cli(project):
    server = start_server(project)
    try:
        with server.client() as c:
            auth = (server.write_key, "")
            r = c.post("/v1/identify", auth=auth, json={"userId": "web1", "traits": {"country": "US"}})
            assert r.status_code == 200, r.text
            # The browser's Global Privacy Control header: no sale or share.
            r = c.post("/v1/page", auth=auth, headers={"Sec-GPC": "1"}, json={"userId": "web1", "name": "Home"})
            assert r.status_code == 200, r.text
            got = c.get("/v1/profiles/web1/consent", headers=server.admin, params={"fresh": "true"}).json()
            assert got["verdicts"]["sale_or_share"]["reason"] == "denied"
            assert [h["via"] for h in got["history"]] == ["gpc"]
            r = c.put("/v1/profiles/web1/consent", headers=server.admin,
                      json={"purposes": {"marketing_email": False}, "source": "preference-center"})
            assert r.status_code == 200, r.text
            assert r.json()["verdicts"]["marketing_email"]["allowed"] is False
            for body, path in [({"purposes": {"marketing_email": "no"}}, "body.purposes.marketing_email"),
                               ({"purposes": {}}, "body.purposes"), ({"purpose": {"x": True}}, "body.purpose")]:
                bad = c.put("/v1/profiles/web1/consent", headers=server.admin, json=body)
                assert bad.status_code == 400 and path in [d["path"] for d in bad.json()["error"]["details"]], bad.text
            bad = c.put("/v1/profiles/web1/consent", headers=server.admin, json={"purposes": {"profiling": True}})
            assert bad.status_code == 400 and "unknown purpose" in bad.text
            assert c.put("/v1/profiles/nobody/consent", headers=server.admin,
                         json={"purposes": {"analytics": True}}).status_code == 404
            assert c.put("/v1/profiles/web1/consent", json={"purposes": {"analytics": True}}).status_code == 401
            refusals = c.get("/v1/privacy/refusals", headers=server.admin)
            assert refusals.status_code == 200 and refusals.json() == {"items": []}
        # The CLI talks to the running server.
        shown = json.loads(run_cli("privacy", "consent", "web1", "--json", project=project).stdout)
        assert shown["verdicts"]["marketing_email"]["reason"] == "denied"
        changed = json.loads(run_cli("privacy", "consent", "web1", "marketing_email=yes", "--json",
                                     project=project).stdout)
        assert changed["verdicts"]["marketing_email"]["reason"] == "granted"
        wrong = run_cli("privacy", "consent", "web1", "marketing_email=maybe", project=project, check=False)
        assert wrong.returncode != 0 and "PURPOSE=yes" in wrong.stdout + wrong.stderr
        assert json.loads(run_cli("privacy", "refusals", "--json", project=project).stdout) == []
    finally:
        stop_server(server)
    # And without a server, on the project's own files.
    shown = json.loads(run_cli("privacy", "consent", "web1", "--json", project=project).stdout)
    assert shown["verdicts"]["marketing_email"]["reason"] == "granted"
    assert "Traceback" not in run_cli("privacy", "consent", "nobody", project=project, check=False).stderr


# -- access and portability ----------------------------------------------------------------------------
def test_a_person_gets_everything_held_about_them(project, tmp_path):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = {"pros": {"name": "Pro plan", "description": "customers on the pro plan",
                                "rule": {"trait": "plan", "eq": "pro"}}}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        engine.identify("ann", {"email": "ann@example.com", "plan": "pro", "consent": {"Advertising": False}},
                        timestamp=T, anonymous_id="anon-1", context={"ip": "192.0.2.1"})
        engine.track("ann", "Order Completed", {"order_id": "o1", "revenue": 12.5}, timestamp="2026-11-01T11:00:00Z")
        engine.identify("bob", {"plan": "free"}, timestamp=T)
        engine.segments.refresh()
        engine.segments.compute()
        engine.privacy.set_consent("ann", {"personalization": False})
        engine.audit.record("sk_test", "get_profile", "anonymous_id:anon-1")
        engine.audit.record("sk_test", "get_profile", "bob")
        engine.segments.export("pros", str(tmp_path / "pros.csv"))      # ann refused advertising: left out
        bundle = engine.privacy.export("email:ann@example.com")
        events = engine.privacy.export_events("ann")
        with pytest.raises(NotFound):
            engine.privacy.export("nobody")
    traits = {t["key"]: t for t in bundle["traits"]}
    assert traits["plan"]["value"] == "pro" and traits["plan"]["source"] == "python" and traits["plan"]["observed_at"]
    assert {i["kind"] for i in bundle["identities"]} == {"user_id", "anonymous_id", "email"}
    assert bundle["consents"]["personalization"]["granted"] is False
    assert {(h["purpose"], h["via"]) for h in bundle["consent_history"]} == {("advertising", "traits"),
                                                                           ("personalization", "api")}
    assert [(s["segment_id"], s["name"], s["meaning"]) for s in bundle["segments"]] == [
        ("pros", "Pro plan", "customers on the pro plan")]
    computed = {c["key"]: c for c in bundle["computed_traits"]}
    assert computed["order_count"]["value"] == 1 and computed["order_count"]["meaning"]
    assert computed["lifecycle_stage"]["meaning"] and bundle["computed_history"]
    assert [(r["actor"], r["target"]) for r in bundle["processing"]] == [("sk_test", "anonymous_id:anon-1")]
    assert [(r["use"], r["purpose"], r["reason"]) for r in bundle["refused_uses"]] == [
        ("segment_export", "advertising", "denied")]
    assert bundle["events"] == 2
    lines = events.strip().splitlines()
    assert lines[0].startswith("message_id,type,event") and len(lines) == 3
    assert "192.0.2.1" in events and "Order Completed" in events and "bob" not in events


def test_export_over_http_and_the_cli(project, tmp_path):
    server = start_server(project)
    try:
        with server.client() as c:
            assert c.post("/v1/identify", auth=(server.write_key, ""),
                          json={"userId": "web9", "traits": {"plan": "pro"}}).status_code == 200
            bundle = c.get("/v1/profiles/web9/export", headers=server.admin, params={"fresh": "true"})
            assert bundle.status_code == 200 and bundle.json()["traits"][0]["key"] == "plan"
            csv = c.get("/v1/profiles/web9/export/events.csv", headers=server.admin)
            assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
            assert csv.text.count("\n") == 2
            assert c.get("/v1/profiles/nobody/export", headers=server.admin).status_code == 404
        out = tmp_path / "export"
        done = json.loads(run_cli("privacy", "export", "web9", "--out", str(out), "--json", project=project).stdout)
        assert done["events"] == 1 and json.loads((out / "profile.json").read_text())["profile_id"]
        assert (out / "events.csv").read_text().count("\n") == 2
        # The export itself is a processing of the person's data: it is in the audit log.
        assert {r["action"] for r in json.loads(run_cli("audit", "log", "--target", "web9", "--json",
                                                        project=project).stdout)} >= {"export_profile",
                                                                                      "export_profile_events"}
    finally:
        stop_server(server)


# -- retention -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["anonymize", "delete"])
def test_retention_expires_old_events_per_type_and_keeps_the_aggregates(project, mode):
    _configure(project, retention={"events": {"page": 30, "Product Viewed": 10, "*": None}, "mode": mode,
                                   "quarantine_days": 5, "refusals_days": 60})
    clock = SimulatedClock(NOW)
    with Engine(project, clock=clock) as engine:
        old, recent = (NOW - timedelta(days=40)).isoformat(), (NOW - timedelta(days=3)).isoformat()
        engine.send([
            {"type": "page", "userId": "ann", "name": "Old", "timestamp": old, "messageId": "p-old"},
            {"type": "page", "userId": "ann", "name": "New", "timestamp": recent, "messageId": "p-new"},
            {"type": "track", "userId": "ann", "event": "Product Viewed", "timestamp": (NOW - timedelta(days=12))
             .isoformat(), "messageId": "v-old", "properties": {"product_id": "sku1"}},
            {"type": "track", "userId": "ann", "event": "Order Completed", "timestamp": old, "messageId": "o-old",
             "properties": {"order_id": "o1", "revenue": 20.0}},
        ])
        engine.store.add_quarantine([{"received_at": NOW - timedelta(days=9), "source": "web", "origin": "http",
                                      "record_no": 0, "message_id": None, "problems": [{"path": "type",
                                      "problem": "is required"}], "raw": "{}"}])
        before = engine.profile("ann")["computed"]
        dry = engine.privacy.retention(dry_run=True)
        assert dry["events"] == {"page": 1, "Product Viewed": 1} and dry["tables"] == {
            "quarantine": 1, "consent_refusals": 0}
        assert engine.sql("SELECT count(*) AS n FROM events").to_pylist()[0]["n"] == 4     # nothing changed
        report = engine.privacy.retention()
        assert report["events"] == {"page": 1, "Product Viewed": 1} and report["removed"] == 3
        kept = engine.sql("SELECT message_id FROM events ORDER BY message_id").column("message_id").to_pylist()
        assert kept == ["o-old", "p-new"]                  # orders ("*": forever) and recent pages stay
        minimized = engine.sql("SELECT message_id FROM events_minimized ORDER BY message_id").column(
            "message_id").to_pylist()
        assert minimized == (["p-old", "v-old"] if mode == "anonymize" else [])
        after = engine.profile("ann")
        assert after["computed"]["event_count"] == before["event_count"] == 4     # the aggregates stay true
        assert {e["messageId"] for e in after["recent_events"]} == {"o-old", "p-new"}   # the document forgot them
        assert engine.quarantine() == []
        assert engine.privacy.retention()["removed"] == 0                   # nothing left to expire
        # A retried page that had expired is not stored again, when its count was kept.
        engine.send([{"type": "page", "userId": "ann", "name": "Old", "timestamp": old, "messageId": "p-old"}])
        assert ("p-old" in engine.sql("SELECT message_id FROM events").column("message_id").to_pylist()) == (
            mode == "delete")


def test_retention_config_errors_and_the_cli(tmp_path):
    from personable.config import write_starter

    write_starter(tmp_path / "p")
    with pytest.raises(ConfigError) as err:
        load_config(_configure(tmp_path / "p", retention={"events": {"page": 0}, "mode": "shred"}))
    assert {d.path for d in err.value.details} == {"privacy.retention.events.page", "privacy.retention.mode"}
    _configure(tmp_path / "p", retention={"quarantine_days": 1})
    report = json.loads(run_cli("privacy", "retention", "--dry-run", "--json", project=tmp_path / "p").stdout)
    assert report["dry_run"] and report["tables"] == {"quarantine": 0} and report["events"] == {}
