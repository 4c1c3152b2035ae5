"""The log worker under store failures (a fault the test injects into the
engine's write of accepted events): a transient failure loses nothing and
quarantines nothing; a record the store refuses every time is set aside in the
quarantine with its error, and the records after it are stored. Before, the
worker retried a poisoned batch forever, and every later event waited behind it."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson
import pytest

from personable import Engine
from personable.errors import StoreError
from personable.log_worker import LogWorker

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def _event(message_id: str) -> bytes:
    return orjson.dumps({"type": "track", "event": "Viewed", "userId": f"u-{message_id}",
                         "messageId": message_id, "timestamp": "2026-12-01T11:00:00Z"})


def _stored(engine: Engine) -> set[str]:
    return {r["message_id"] for r in engine.sql("SELECT message_id FROM events").to_pylist()}


def _run_until(worker: LogWorker, done, timeout: float = 60.0) -> None:
    worker.start()
    deadline = time.time() + timeout
    try:
        while not done() and time.time() < deadline:
            time.sleep(0.05)
    finally:
        worker._stop.set()
        worker._thread.join(30)
    assert done(), "the worker did not get there in time"


@pytest.fixture
def engine(project):
    with Engine(project) as e:
        yield e


def test_a_record_the_store_always_refuses_is_set_aside(engine, monkeypatch):
    write = engine._write_accepted

    def refuse_poison(items, positions):
        if any(b'"poison"' in line for line, _, _ in items):
            raise StoreError("the store refuses this record (injected by the test)")
        return write(items, positions)

    monkeypatch.setattr(engine, "_write_accepted", refuse_poison)
    ids = ["a", "b", "poison", "c", "d", "e"]
    engine.accept([(_event(i), "web", NOW) for i in ids])
    worker = LogWorker(engine, set_aside_after=3, set_aside_after_s=0.0)
    _run_until(worker, lambda: _stored(engine) == {"a", "b", "c", "d", "e"})
    assert worker.set_aside == 1
    quarantined = engine.store.quarantine().to_pylist()
    assert [q["message_id"] for q in quarantined] == ["poison"]
    assert "could not be stored: StoreError" in quarantined[0]["problems"][0]["problem"]
    assert orjson.loads(quarantined[0]["raw"])["messageId"] == "poison"
    assert engine.process_log() == 0   # nothing left behind it


def test_a_transient_failure_loses_nothing_and_quarantines_nothing(engine, monkeypatch):
    write = engine._write_accepted
    failures = {"left": 4}

    def flaky(items, positions):
        if failures["left"]:
            failures["left"] -= 1
            raise StoreError("the store is briefly unavailable (injected by the test)")
        return write(items, positions)

    monkeypatch.setattr(engine, "_write_accepted", flaky)
    ids = [f"m{i}" for i in range(20)]
    engine.accept([(_event(i), "web", NOW) for i in ids])
    # A lone record must fail 3 times over an hour before it counts as poison.
    worker = LogWorker(engine, set_aside_after=3, set_aside_after_s=3600.0)
    _run_until(worker, lambda: _stored(engine) == set(ids))
    assert worker.set_aside == 0
    assert engine.store.quarantine().num_rows == 0


def test_once_caught_up_the_worker_lets_a_batch_gather_and_a_fresh_read_ends_the_wait(engine):
    """A store batch costs ~0.25 s of CPU whatever its size, so the worker no
    longer stores whatever arrived as soon as it did: once caught up it waits
    ``gather_s`` for the next batch to grow. A reader that asks for fresh data
    (wait_processed, what `fresh=true` calls) ends that wait."""
    stored_batches = []
    write = engine._write_accepted

    def counting(items, positions):
        stored_batches.append(len(items))
        return write(items, positions)

    engine._write_accepted = counting
    worker = LogWorker(engine, gather_s=600.0)
    worker.start()
    try:
        engine.accept([(_event("first"), "web", NOW)])
        deadline = time.time() + 30                   # the first event after a quiet spell: stored at once
        while "first" not in _stored(engine) and time.time() < deadline:
            time.sleep(0.05)
        assert "first" in _stored(engine)             # (polled: a fresh read would end the gathering)
        for i in range(20):
            engine.accept([(_event(f"later-{i}"), "web", NOW)])
        time.sleep(1.0)
        assert "later-0" not in _stored(engine)        # still gathering, with 599 s to go
        started = time.monotonic()
        assert engine.wait_processed(timeout=30)      # a fresh read: the wait ends now
        assert time.monotonic() - started < 20
        assert {f"later-{i}" for i in range(20)} <= _stored(engine)
        assert stored_batches[-1] == 20                # the twenty went in one batch
    finally:
        worker.stop()
