"""The durable event log behind the HTTP path: acknowledged means stored, even
across a crash, and nothing is applied twice."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timezone

import httpx
import pyarrow as pa

from conftest import run_cli, start_server
from personable import Engine
from personable.adapters.filelog import FileLog

NOW = datetime(2026, 2, 1, 10, tzinfo=timezone.utc)


def test_log_appends_reads_rotates_and_releases(tmp_path):
    log = FileLog(tmp_path / "log", segment_bytes=40)
    for i in range(10):
        log.append([f"r{i}a".encode(), f"r{i}b".encode()])
    got, positions = [], {}
    while True:
        batch, positions = log.read(positions, 3)
        if not batch:
            break
        got += batch
    assert got == [f"r{i}{s}".encode() for i in range(10) for s in "ab"]
    assert positions == log.end() and list(positions) == [0]   # one partition
    assert len(list((tmp_path / "log").glob("*.log"))) > 1
    log.release(positions)
    assert len(list((tmp_path / "log").glob("*.log"))) == 1
    assert log.read(positions, 10) == ([], positions)
    log.close()


def test_the_log_keeps_no_record_once_it_is_stored(tmp_path):
    """Segments roll by age, even with no new record, so a stored record does not
    linger in the active segment (its personal data with it)."""
    import time

    log = FileLog(tmp_path / "log", roll_s=0.1)
    log.append([b'{"userId":"u1","traits":{"email":"ann@example.com"}}'])
    records, positions = log.read({}, 10)
    assert len(records) == 1
    log.release(positions)                     # stored: but it is still the segment being written
    assert b"ann@example.com" in b"".join(p.read_bytes() for p in (tmp_path / "log").glob("*.log"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.15)
        log.release(positions)                 # what the store does when idle
        if b"ann@example.com" not in b"".join(p.read_bytes() for p in (tmp_path / "log").glob("*.log")):
            break
    else:
        raise AssertionError("the stored record is still in the log")
    log.append([b'{"userId":"u2"}'])           # and the log goes on
    assert log.read(positions, 10)[0] == [b'{"userId":"u2"}']
    log.close()


def test_a_server_trims_its_log_once_events_are_stored(project):
    from conftest import start_server, stop_server
    import time

    server = start_server(project)
    try:
        with server.client() as c:
            assert c.post("/v1/identify", auth=(server.write_key, ""),
                          json={"userId": "u1", "traits": {"email": "trim-me@example.com"}}).status_code == 200
            assert c.get("/v1/profiles/u1", headers=server.admin, params={"fresh": "true"}).status_code == 200
            bus = project / ".personable" / "bus"
            # The segments holding it (encrypted: its text is not there to look for) go, and their keys with them.
            held = [p for p in bus.glob("*.log") if p.stat().st_size]
            assert held and all(p.with_suffix(".key").exists() for p in held)
            deadline = time.monotonic() + 30
            while any(p.exists() or p.with_suffix(".key").exists() for p in held):
                assert time.monotonic() < deadline, "the stored event is still in the log after 30 s"
                time.sleep(0.5)
    finally:
        stop_server(server)


def test_torn_tail_is_dropped_on_open(tmp_path):
    log = FileLog(tmp_path)
    end = log.append([b"whole"])
    log.close()
    segment = next(tmp_path.glob("*.log"))
    with open(segment, "ab") as fh:
        fh.write(b"half-writ")  # a crash in the middle of an append that was never acknowledged
    again = FileLog(tmp_path)
    assert again.end() == end and again.read({}, 10) == ([b"whole"], end)
    again.close()


def _items(n, start=0):
    return [(json.dumps({"type": "track", "event": "X", "userId": f"u{i}", "messageId": f"m{i}",
                         "timestamp": "2026-02-01T09:00:00Z"}).encode(), "web", NOW) for i in range(start, start + n)]


def test_accepted_events_survive_a_restart_exactly_once(project):
    e = Engine(project)
    e.accept(_items(3))
    assert e.process_log() == 3
    e.accept(_items(2, start=3))
    e.close()  # "crash": two accepted events not yet stored
    with Engine(project) as again:  # the backlog is stored on open
        assert again.stats()["events"] == 5
        assert again.store.committed_positions("http") == again.log.end()
        assert again.process_log() == 0
        row = again.sql("SELECT source, received_at FROM events WHERE message_id = 'm4'").to_pylist()[0]
        assert row["source"] == "web" and row["received_at"] == NOW


def test_acknowledged_events_survive_a_killed_server(project):
    server = start_server(project)
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
        for i in range(50):
            r = c.post("/v1/track", json={"userId": f"k{i}", "event": "X", "timestamp": "2026-02-01T09:00:00Z"})
            assert r.status_code == 200
    server.proc.send_signal(signal.SIGKILL)  # no clean shutdown, no chance to drain
    server.proc.wait()
    stats = json.loads(run_cli("status", "--json", project=project).stdout)
    assert stats["events"] == 50


def test_positions_are_per_partition_and_committed_with_the_batch(project):
    """The store keeps one committed position per partition of the log, in the
    batch's transaction: what a partitioned log (Kafka) needs, with no domain change."""
    from personable.ports.eventlog import beyond, covers, furthest

    assert beyond({0: 5, 1: 2}, {0: 5, 1: 1}) and not beyond({0: 5}, {0: 5, 1: 9})
    assert covers({0: 5, 1: 2}, {1: 2}) and not covers({0: 5}, {0: 5, 1: 1})
    assert furthest({0: 5, 1: 1}, {1: 3, 2: 4}) == {0: 5, 1: 3, 2: 4}
    with Engine(project) as e:
        e._write_table(pa.table({"line": [_items(1)[0][0].decode()]}), "web", "t", NOW, True,
                       {0: 120, 3: 7})
        assert e.store.committed_positions("http") == {0: 120, 3: 7}
        e._write_table(pa.table({"line": [_items(1, start=1)[0][0].decode()]}), "web", "t", NOW,
                       True, {3: 9})
        assert e.store.committed_positions("http") == {0: 120, 3: 9}
