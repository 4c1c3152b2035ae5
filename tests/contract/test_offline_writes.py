"""Contract of the write path's ports (EventWrites, ProfileProjection, Analytics),
one suite for every offline store: the embedded DuckDB file and PostgreSQL (a
real server, started by scripts/test-services.sh).

The batches go through the real domain half of the write path
(``ingest.pipeline.WritePath``: quality, identifiers, stitching); the store
does the rest. Both stores must give the same reports and the same profile
documents; several processes writing to one PostgreSQL database at once must
lose nothing and stitch each person into one profile.
"""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ibis
import orjson
import pyarrow as pa
import pytest

from personable.adapters.registry import open_adapter
from personable.config import load_config, write_starter
from personable.ingest.pipeline import WritePath
from personable.ports import StagedInput
from personable.tables import PROFILES

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
STORES = [pytest.param("duckdb", id="duckdb"), pytest.param("postgres", id="postgres", marks=pytest.mark.services)]


def _write_path(cfg):
    """The write path as the composition root builds it, with the project's identity keys."""
    from personable.identity.keyed import IdentityHasher
    from personable.privacy.identity_keys import identity_keys

    return WritePath(cfg, IdentityHasher(identity_keys(cfg.state_dir)))


@pytest.fixture(params=STORES)
def store_url(request, tmp_path: Path) -> str:
    return "duckdb:///offline.duckdb" if request.param == "duckdb" else request.getfixturevalue("postgres_url")


@pytest.fixture
def project(tmp_path: Path):
    write_starter(tmp_path, "contract")
    (tmp_path / "personable.yaml").write_text((tmp_path / "personable.yaml").read_text().replace(
        "    first_source: first_write_wins", "    first_source: first_write_wins\n    signup_plan: first_write_wins"))
    return tmp_path


@pytest.fixture
def store(store_url, project):
    s = open_adapter(store_url, project)
    yield s
    s.close()


@pytest.fixture
def write(store, project):
    path = _write_path(load_config(project))

    def write_(events, received_at=NOW, validated=False):
        lines = pa.table({"line": [e if isinstance(e, str) else orjson.dumps(e).decode() for e in events]})
        staged = StagedInput(source="web", origin="test", lines=lines, received_at=received_at, validated=validated)
        with store.batch(staged, path.settings) as batch:
            report = path.write(batch)
            changed = batch.changed_profiles()
        return report, changed

    return write_


def doc(store, identifier):
    pid = store.resolve(identifier)
    assert pid is not None, identifier
    return orjson.loads(store.profile_docs([pid])[0][1])


def ts(minutes: float) -> str:
    return (NOW - timedelta(days=1) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_a_batch_is_validated_stored_once_and_counted(store, write):
    events = [
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m1", "timestamp": ts(0),
         "traits": {"email": "Ann@Example.com", "plan": "pro", "consent": {"email": True}}},
        {"type": "track", "anonymousId": "a1", "event": "Order Completed", "messageId": "m2", "timestamp": ts(5),
         "properties": {"revenue": 20, "currency": "USD"}, "context": {"userAgent": "Mozilla iPhone"}},
        {"type": "page", "anonymousId": "a1", "messageId": "m3", "timestamp": ts(120),
         "context": {"campaign": {"medium": "Email"}}},
        {"type": "nope", "messageId": "m4"},
        "{not json",
    ]
    report, (touched, removed) = write(events)
    assert (report.received, report.accepted, report.quarantined, report.duplicates) == (5, 3, 2, 0)
    assert report.profiles_created == 1 and len(touched) == 1 and removed == []
    again, _ = write(events)
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 3, 2)
    d = doc(store, "u1")
    c = d["computed"]
    assert (c["event_count"], c["order_count"], c["page_count"], c["session_count"]) == (3, 1, 1, 2)
    assert c["revenue"] == 20.0 and c["last_device"] == "mobile" and c["last_channel"] == "email"
    assert d["traits"]["plan"] == "pro" and d["traits"]["email"] == "ann@example.com"
    assert d["trait_sources"]["email"]["observed"] == "Ann@Example.com"
    assert d["consents"]["email"]["granted"] is True
    assert [e["messageId"] for e in d["recent_events"]] == ["m3", "m2", "m1"]
    assert store.stats()["events"] == 3 and store.stats()["quarantined"] == 4
    assert store.quarantine(limit=10).num_rows == 4


def test_identify_merges_two_profiles_and_folds_them(store, write):
    write([{"type": "track", "anonymousId": "a1", "event": "Order Completed", "messageId": "x1", "timestamp": ts(0),
            "properties": {"revenue": 5}},
           {"type": "identify", "anonymousId": "a1", "messageId": "x2", "timestamp": ts(1),
            "traits": {"plan": "free", "signup_plan": "free", "consent": {"ads": False}}}])
    write([{"type": "identify", "userId": "u9", "anonymousId": "b1", "messageId": "x3", "timestamp": ts(200),
            "traits": {"plan": "pro", "signup_plan": "pro", "consent": {"ads": True}}},
           {"type": "track", "anonymousId": "b1", "event": "Order Completed", "messageId": "x4", "timestamp": ts(201),
            "properties": {"revenue": 7}}])
    first, second = store.resolve("a1"), store.resolve("b1")
    assert first != second
    report, (touched, removed) = write([{"type": "identify", "userId": "u9", "anonymousId": "a1", "messageId": "x5",
                                         "timestamp": ts(300)}])
    assert report.merges == 1 and len(removed) == 1
    survivor = store.resolve("a1")
    assert survivor == store.resolve("b1") == store.resolve("u9") and survivor in touched
    assert store.resolve(f"profile:{removed[0]}") == survivor
    d = doc(store, "u9")
    c = d["computed"]
    assert (c["event_count"], c["order_count"], c["revenue"]) == (5, 2, 12.0)
    assert d["merged_from"] == removed
    # Last write wins by event time; signup_plan is first_write_wins (configured above).
    assert d["traits"]["plan"] == "pro" and d["traits"]["signup_plan"] == "free"
    assert d["consents"]["ads"]["granted"] is True
    assert {i["value"] for i in d["identities"] if i["kind"] == "anonymous_id"} == {"a1", "b1"}


def test_consent_and_traits_keep_the_newest_observation_by_event_time(store, write):
    write([{"type": "identify", "userId": "c1", "messageId": "c-2", "timestamp": ts(10),
            "traits": {"plan": "new", "consent": {"email": False}}}])
    # Older observations arriving later change nothing.
    write([{"type": "identify", "userId": "c1", "messageId": "c-1", "timestamp": ts(5),
            "traits": {"plan": "old", "consent": {"email": True}}}])
    d = doc(store, "c1")
    assert d["traits"]["plan"] == "new" and d["consents"]["email"]["granted"] is False


def test_a_file_is_imported_in_chunks(store, project, tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [orjson.dumps({"type": "track", "anonymousId": f"f{i % 7}", "event": "Viewed", "messageId": f"f-{i}",
                           "timestamp": ts(i)}).decode() for i in range(50)]
    path.write_text("\n".join(lines + ["{broken"]) + "\n")
    write_path = _write_path(load_config(project))
    staged = StagedInput(source="file", origin=str(path), file=str(path), require_timestamp=True, received_at=NOW)
    accepted = quarantined = 0
    with store.open_file(staged) as f:
        assert f.total == 51
        for first in range(1, f.total + 1, 20):
            with f.chunk(first, min(first + 19, f.total), write_path.settings) as batch:
                r = write_path.write(batch)
                accepted, quarantined = accepted + r.accepted, quarantined + r.quarantined
    assert (accepted, quarantined) == (50, 1)
    assert doc(store, "f3")["computed"]["event_count"] == len([i for i in range(50) if i % 7 == 3])


def test_analytics_run_ibis_expressions_and_projection_reads(store, write):
    write([{"type": "track", "anonymousId": f"p{i}", "event": "Viewed", "messageId": f"p-{i}", "timestamp": ts(i)}
           for i in range(5)])
    counted = store.execute(PROFILES.aggregate(n=PROFILES.count(), events=PROFILES.event_count.sum()))
    assert counted.to_pylist() == [{"n": 5, "events": 5}]
    typed = store.execute(PROFILES.filter(PROFILES.profile_id == ibis.literal(store.resolve("p1")))
                          .select("profile_id", "first_seen"))
    assert typed.schema.field("first_seen").type == pa.timestamp("us", tz="UTC")
    changed, newest = store.changed_since(None)
    assert len(changed) == 5 and newest == NOW
    assert store.changed_since(NOW.isoformat()) == ([], None)
    keys = dict(store.lookup_keys([store.resolve("p2")]))
    assert keys["anonymous_id:p2"] == store.resolve("p2")


def _writer_process(url: str, project: str, worker: int, batches: int) -> None:
    """One process's share: every person is seen by every worker, under ids
    that only link up through identify calls spread over the workers."""
    write_path = _write_path(load_config(Path(project)))
    s = open_adapter(url, Path(project))
    try:
        for b in range(batches):
            events = []
            for person in range(10):
                events.append({"type": "identify", "userId": f"user-{person}",
                               "anonymousId": f"anon-{person}-{worker}-{b}",
                               "messageId": f"w{worker}-b{b}-p{person}", "timestamp": ts(b)})
                events.append({"type": "track", "anonymousId": f"anon-{person}-{worker}-{b}", "event": "Viewed",
                               "messageId": f"w{worker}-b{b}-p{person}-t", "timestamp": ts(b + 0.5)})
            lines = pa.table({"line": [orjson.dumps(e).decode() for e in events]})
            with s.batch(StagedInput(source="w", origin=f"w{worker}", lines=lines, received_at=NOW),
                         write_path.settings) as batch:
                write_path.write(batch)
    finally:
        s.close()


@pytest.mark.services
def test_concurrent_writer_processes_lose_nothing_and_stitch_one_profile_per_person(postgres_url, project):
    workers, batches = 3, 6
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer_process, args=(postgres_url, str(project), w, batches)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * workers
    s = open_adapter(postgres_url, project)
    try:
        stats = s.stats()
        assert stats["events"] == workers * batches * 10 * 2
        assert stats["profiles"] == 10   # one per person, however the batches interleaved
        for person in range(10):
            d = doc(s, f"user-{person}")
            assert d["computed"]["event_count"] == workers * batches * 2
            anons = {i["value"] for i in d["identities"] if i["kind"] == "anonymous_id"}
            assert len(anons) == workers * batches
    finally:
        s.close()


def test_a_refused_statement_is_a_store_error_with_the_statement_and_rolls_back(store):
    """The SQL base translates the driver's errors (duckdb.Error, psycopg.Error)
    into the project's StoreError with the statement attached, and the
    transaction it broke leaves nothing behind."""
    from personable.errors import StoreError

    with pytest.raises(StoreError) as caught:
        with store._writing() as db:
            db.execute("INSERT INTO segments (segment_id, name, description, rule, origin, created_at, updated_at) "
                       f"VALUES ('s1', 'n', 'd', {db.json_param()}, 'api', ?, ?)", ['{"trait": "x"}', NOW, NOW])
            db.execute("SELECT no_such_column FROM segments")
    assert "no_such_column" in caught.value.extra["sql"] and caught.value.code == "store_error"
    assert store.stored_segments() == []


def test_a_nul_character_never_blocks_the_write_path(store, write):
    """PostgreSQL text cannot hold U+0000: an event carrying one must not fail
    its batch (the log worker would retry it forever and store nothing after
    it). Whatever a store does with it, the batch and the next ones land."""
    bad = '{"type": "track", "event": "X\\u0000", "userId": "n1", "messageId": "nul-1", "timestamp": "%s"}' % ts(1)
    report, _ = write([bad, {"type": "track", "event": "Y", "userId": "n2", "messageId": "nul-2", "timestamp": ts(2)}],
                      validated=True)
    assert report.accepted + report.quarantined == 2
    later, _ = write([{"type": "track", "event": "Z", "userId": "n3", "messageId": "nul-3", "timestamp": ts(3)}])
    assert later.accepted == 1 and store.resolve("n2") and store.resolve("n3")
    store.add_quarantine([{"received_at": NOW, "source": "web", "origin": "http", "message_id": "m\x00",
                           "problems": [{"path": "userId", "problem": "got 'a\x00'"}], "raw": 'x\x00y'}])
    assert store.quarantine(limit=50).num_rows >= 1


def test_lines_replayed_from_the_log_keep_their_own_source_and_receive_time(store, project):
    """The event log's lines carry the source (write key) and the time they
    were accepted; the store must keep those, not the batch's."""
    accepted = NOW - timedelta(minutes=7)
    lines = pa.table({
        "line": [orjson.dumps({"type": "track", "event": "X", "userId": "own1", "messageId": "own-1",
                               "timestamp": ts(0)}).decode()],
        "source": ["shop-key"], "received_at": pa.array([accepted], pa.timestamp("us", tz="UTC"))})
    path = _write_path(load_config(project))
    with store.batch(StagedInput(source="http", origin="http", lines=lines, received_at=NOW, validated=True),
                     path.settings) as batch:
        path.write(batch)
    row = store.execute(ibis.table({"message_id": "string", "source": "string", "received_at": "timestamp('UTC')"},
                                   name="events").filter(lambda t: t.message_id == "own-1")).to_pylist()[0]
    assert row["source"] == "shop-key" and row["received_at"] == accepted


def test_notebook_sql_is_read_only_and_takes_parameters(store, write):
    from personable.errors import PersonableError

    write([{"type": "track", "event": "Viewed", "anonymousId": "q1", "messageId": "q-1", "timestamp": ts(0)}])
    assert store.sql("SELECT count(*) AS n FROM events WHERE event LIKE 'View%'").to_pylist() == [{"n": 1}]
    assert store.sql("SELECT count(*) AS n FROM events WHERE event = ?", ["Viewed"]).to_pylist() == [{"n": 1}]
    for sneaky in ("DELETE FROM events", "SELECT 1; COMMIT; CREATE TABLE pwn (x int)"):
        with pytest.raises(PersonableError):
            store.sql(sneaky)
    assert store.stats()["events"] == 1
    with pytest.raises(PersonableError):
        store.sql("SELECT * FROM pwn")


def test_an_empty_read_only_query_keeps_its_columns(store):
    """``sql()`` on PostgreSQL answered an empty result with no columns at all."""
    table = store.sql("SELECT message_id, type FROM events WHERE message_id = 'none such'")
    assert table.num_rows == 0 and table.column_names == ["message_id", "type"]
