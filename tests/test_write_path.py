"""The write path end to end, on every offline store (a real DuckDB file and a
real PostgreSQL database): idempotency, clock skew, stitching and its guards,
merges, traits, consents, imports and quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personable import Engine
from personable.errors import ImportFailed, NotFound, ValidationFailed

from conftest import OFFLINE_STORES, project_on

T = "2026-02-01T10:00:00Z"


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    return project_on(request, tmp_path)


def test_same_message_id_is_stored_once(engine):
    ev = {"type": "track", "event": "X", "userId": "u1", "messageId": "m-1", "timestamp": T}
    engine.send([ev])
    report = engine.send([ev, ev])
    assert report.duplicates == 2 and report.accepted == 0
    assert engine.stats()["events"] == 1


def test_clock_skew_is_corrected_like_segment(engine):
    # The device clock is 1 h ahead: timestamp and sentAt both say 11:00, it arrived at 10:00.
    from datetime import datetime, timezone
    received = datetime(2026, 2, 1, 10, 0, tzinfo=timezone.utc)
    engine.write_lines([json.dumps({"type": "track", "event": "X", "userId": "u1", "messageId": "sk",
                                    "timestamp": "2026-02-01T10:59:00Z", "sentAt": "2026-02-01T11:00:00Z"})],
                       "web", "t", received_at=received)
    row = engine.sql("SELECT timestamp, original_timestamp FROM events WHERE message_id = 'sk'").to_pylist()[0]
    assert row["timestamp"] == datetime(2026, 2, 1, 9, 59, tzinfo=timezone.utc)


def test_anonymous_history_merges_into_known_profile(engine):
    engine.page(anonymous_id="anon-1", name="Home", timestamp="2026-02-01T09:00:00Z")
    engine.track(None, "Product Viewed", {"product_id": "p1", "price": 5}, anonymous_id="anon-1", timestamp="2026-02-01T09:01:00Z")
    # A second device of the same person, also anonymous, then a known user on its own.
    engine.page(anonymous_id="anon-2", name="Home", timestamp="2026-02-02T09:00:00Z")
    engine.identify("u1", {"email": "Ann@Example.com"}, timestamp="2026-02-03T09:00:00Z")
    assert engine.stats()["profiles"] == 3
    engine.identify("u1", {}, anonymous_id="anon-1", timestamp="2026-02-03T09:05:00Z")
    engine.identify("u1", {}, anonymous_id="anon-2", timestamp="2026-02-03T09:06:00Z")
    prof = engine.profile("u1")
    assert prof["profile_id"] == engine.resolve("anon-1") == engine.resolve("anon-2") == engine.resolve("email:ann@example.com")
    assert prof["computed"]["event_count"] == 6 and prof["computed"]["page_count"] == 2
    assert len(prof["merged_from"]) == 2
    for old in prof["merged_from"]:  # old profile ids keep resolving
        assert engine.profile(old)["profile_id"] == prof["profile_id"]
    assert engine.stats()["profiles"] == 1


def test_identify_never_merges_two_known_users(engine):
    engine.identify("u1", {"email": "family@example.com"}, anonymous_id="shared-tablet", timestamp=T)
    engine.identify("u2", {"email": "family@example.com"}, anonymous_id="shared-tablet", timestamp="2026-02-01T11:00:00Z")
    assert engine.resolve("u1") != engine.resolve("u2")
    assert engine.resolve("shared-tablet") == engine.resolve("u1")  # first come keeps the device
    assert engine.stats()["refused_links"] >= 1


def test_alias_merges_two_known_users_explicitly(engine):
    engine.identify("old-id", {"plan": "free"}, timestamp=T)
    engine.identify("new-id", {"plan": "pro"}, timestamp="2026-02-02T10:00:00Z")
    engine.alias("new-id", "old-id", timestamp="2026-02-03T10:00:00Z")
    assert engine.resolve("old-id") == engine.resolve("new-id")
    assert engine.profile("old-id")["traits"]["plan"] == "pro"


def test_after_an_alias_the_persons_new_devices_still_join_them(engine):
    """An alias took the profile past max_user_ids (two userIds); a new
    anonymousId seen with one of them adds no user, so it must join. It was
    refused, got a profile id of its own with no profile row, and every later
    batch carrying it failed (found by a review; fails on the old code)."""
    def ev(mid, **fields):
        return {"type": "track", "event": "Viewed", "messageId": mid, "timestamp": f"2026-01-01T00:00:0{mid[-1]}Z",
                **fields}
    engine.send([ev("m1", userId="bob"), ev("m2", userId="alice"),
                 {"type": "alias", "userId": "alice", "previousId": "bob", "messageId": "m3",
                  "timestamp": "2026-01-01T00:00:03Z"},
                 ev("m4", userId="alice", anonymousId="new-phone")])
    alice = engine.resolve("alice")
    assert engine.resolve("bob") == alice and engine.resolve("new-phone") == alice
    report = engine.send([ev("m5", anonymousId="new-phone")])   # raised before the fix
    assert report.accepted == 1 and report.refused_links == 0
    assert engine.profile("new-phone")["profile_id"] == alice
    assert engine.profile(alice)["computed"]["event_count"] == 5


def test_junk_ids_do_not_collapse_people(engine):
    for i in range(5):
        engine.track(f"user-{i}", "X", {}, anonymous_id="undefined", timestamp=T)
        engine.identify(f"user-{i}", {"email": "test@test.com", "phone": "000-000-0000"}, timestamp=T)
    ids = {engine.resolve(f"user-{i}") for i in range(5)}
    assert len(ids) == 5
    assert engine.resolve("undefined") is None
    with pytest.raises(ValidationFailed):
        engine.track("null", "X", {}, timestamp=T)


def test_traits_merge_by_event_time_with_per_trait_policy(engine):
    # Arrive out of order: the newer value must win for last_write_wins traits,
    # the older for first_source (first_write_wins in the starter config).
    engine.identify("u1", {"plan": "pro", "first_source": "email"}, timestamp="2026-02-05T10:00:00Z")
    engine.identify("u1", {"plan": "free", "first_source": "ads"}, timestamp="2026-02-01T10:00:00Z")
    traits = engine.profile("u1")["traits"]
    assert traits["plan"] == "pro" and traits["first_source"] == "ads"


def test_consent_is_captured_from_context_and_traits(engine):
    engine.page("u1", "Home", context={"consent": {"categoryPreferences": {"advertising": False, "analytics": True}}}, timestamp=T)
    engine.identify("u1", {"consent": {"advertising": True}}, timestamp="2026-02-02T10:00:00Z")
    consents = engine.profile("u1")["consents"]
    assert consents["advertising"]["granted"] is True and consents["analytics"]["granted"] is True
    assert engine.sql("SELECT count(*) AS n FROM consent_log").to_pylist()[0]["n"] == 3


def test_computed_basics(engine):
    ctx = {"userAgent": "Mozilla/5.0 (iPhone) Mobile", "campaign": {"medium": "email"}}
    engine.page("u1", "Home", context=ctx, timestamp="2026-02-01T10:00:00Z")
    engine.track("u1", "Order Completed", {"order_id": "o1", "revenue": 30.5, "currency": "usd"}, timestamp="2026-02-01T10:10:00Z")
    engine.track("u1", "Order Completed", {"order_id": "o2", "total": 20}, context={"device": {"type": "desktop"}},
                 timestamp="2026-02-03T10:00:00Z")
    c = engine.profile("u1")["computed"]
    assert c["order_count"] == 2 and c["revenue"] == 50.5 and c["session_count"] == 2
    assert c["last_device"] == "desktop" and c["last_channel"] == "email"


def test_unknown_profile(engine):
    with pytest.raises(NotFound):
        engine.profile("nobody")


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_import_quarantines_bad_lines_and_keeps_the_rest(engine, tmp_path):
    good = [json.dumps({"type": "track", "event": "X", "userId": f"u{i}", "messageId": f"m{i}", "timestamp": T}).encode()
            for i in range(5)]
    bad = [b"{not json", b'{"type": "track", "userId": "u\xff\xfe"}', b'{"type": "track", "event": "X", "userId": "u9"}',
           b'[1, 2]']
    path = _write(tmp_path / "events.jsonl", good[:2] + bad + good[2:])
    report = engine.ingest(path)
    assert report.accepted == 5 and report.quarantined == 4 and report.received == 9
    problems = [p for r in engine.quarantine() for p in r["problems"]]
    texts = " | ".join(f"{p['path']}: {p['problem']}" for p in problems)
    assert "not valid JSON" in texts and "UTF-8" in texts and "required for file imports" in texts and "JSON object" in texts
    again = engine.ingest(path)  # idempotent re-import
    assert again.accepted == 0 and again.duplicates == 5


def test_csv_and_parquet_event_imports(engine, tmp_path):
    csv = tmp_path / "events.csv"
    csv.write_text("messageId,type,event,userId,timestamp,price,properties.product_id\n"
                   "c1,track,Product Viewed,u1,2026-02-01T10:00:00Z,12.5,p1\n"
                   "c2,track,Product Viewed,u1,2026-02-01T10:01:00Z,3,p2\n")
    assert engine.ingest(csv).accepted == 2
    props = engine.sql("SELECT properties FROM events WHERE message_id = 'c1'").to_pylist()[0]["properties"]
    assert json.loads(props)["product_id"] == "p1"
    table = pa.table({"message_id": ["q1"], "type": ["identify"], "user_id": ["u2"], "timestamp": ["2026-02-01T10:00:00Z"],
                      "traits.plan": ["pro"]})
    pq.write_table(table, tmp_path / "ev.parquet")
    assert engine.ingest(tmp_path / "ev.parquet").accepted == 1
    assert engine.profile("u2")["traits"]["plan"] == "pro"


def test_crm_and_orders_imports(engine, tmp_path):
    (tmp_path / "crm.csv").write_text(
        "customer_id,email,phone,first_name,last_name,country,updated_at\n"
        "c1,ANN@example.com ,+1 415 555 0101,Ann,Lee,US,2026-01-05T00:00:00Z\n"
        ",bob@example.com,,Bob,Ray,GB,2026-01-06T00:00:00Z\n"
        ",,,Nobody,Known,FR,2026-01-07T00:00:00Z\n")
    report = engine.ingest(tmp_path / "crm.csv", kind="crm")
    # A customer record without any id is still a customer: it gets a profile of
    # its own (probabilistic resolution may find its person later).
    assert report.accepted == 3 and report.quarantined == 0 and report.profiles_created == 3
    assert engine.profile("email:ann@example.com")["traits"]["first_name"] == "Ann"
    assert engine.resolve("phone:(415) 555-0101") == engine.resolve("c1")
    (tmp_path / "orders.csv").write_text(
        "order_id,customer_id,total,currency,ordered_at\n"
        "o1,c1,19.99,USD,2026-01-10T10:00:00Z\n"
        "o2,c1,not-a-number,USD,2026-01-11T10:00:00Z\n")
    report = engine.ingest(tmp_path / "orders.csv", kind="orders")
    assert report.accepted == 1 and report.quarantined == 1
    assert engine.profile("c1")["computed"]["revenue"] == pytest.approx(19.99)
    with pytest.raises(ImportFailed, match="mapped columns not in the file"):
        engine.ingest(tmp_path / "orders.csv", kind="orders", mapping={"order_id": "nope"})


def test_large_import_runs_in_chunks_and_survives_reopen(project, tmp_path):
    lines = [json.dumps({"type": "track", "event": "X", "anonymousId": f"a{i % 50}", "messageId": f"m{i}", "timestamp": T}).encode()
             for i in range(1000)]
    path = _write(tmp_path / "many.jsonl", lines)
    seen = []
    with Engine(project) as e:
        report = e.ingest(path, chunk_size=300, progress=lambda done, total: seen.append((done, total)))
        assert report.accepted == 1000 and seen[-1] == (1000, 1000) and len(seen) == 5
    with Engine(project) as e:  # durable: a new process sees it all
        assert e.stats()["events"] == 1000 and e.stats()["profiles"] == 50


def test_schema_migrations_are_recorded(engine):
    assert engine.store.schema_version >= 1


def test_events_without_message_id_are_keyed_by_their_content(engine):
    """One rule for the messageId fallback: a content hash, so a retry is stored once
    while two calls alike in all but time stay two events."""
    from personable.events.message_id import content_message_id

    event = {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"product_id": "p1"},
             "timestamp": "2026-01-01T10:00:00Z"}
    first = engine.send([dict(event)])
    again = engine.send([{**event, "sentAt": "2026-01-01T10:00:05Z"}])   # a retry: only sentAt changed
    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 1)
    # Key order does not matter; content does.
    assert content_message_id(dict(reversed(list(event.items())))) == content_message_id(event)
    assert content_message_id({**event, "event": "Product Added"}) != content_message_id(event)
    engine.track("u1", "Product Viewed", {"product_id": "p1"})
    engine.track("u1", "Product Viewed", {"product_id": "p1"})
    assert engine.profile("u1")["computed"]["event_count"] == 3
