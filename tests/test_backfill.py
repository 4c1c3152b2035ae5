"""A file import is a backfill: its chunks commit one by one, but realtime
segments and the online documents react once, at the end, for every profile
the chunks touched -- and nothing is lost when an import stops half way
(an error in a chunk, or the process killed between chunks)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import personable
from personable import Engine
from personable.adapters.duckdb.segments_store import _Among
from personable.ports import PROFILES_CHANGED

T = "2026-02-01T10:00:00Z"
BUYERS = {"name": "Buyers", "rule": {"event": "Order Completed", "count": {"gte": 2}}}


def _orders_file(path: Path, visitors: int = 50, per_visitor: int = 4) -> Path:
    """Each visitor's orders spread over the whole file, so every chunk touches every profile."""
    lines = [json.dumps({"type": "track", "event": "Order Completed", "anonymousId": f"a{i % visitors}",
                         "messageId": f"m{i}", "timestamp": T, "properties": {"order_id": f"o{i}", "revenue": 5}})
             for i in range(visitors * per_visitor)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _online_agrees_with_store(e: Engine) -> list[str]:
    """Every stored profile's online document equals the offline store's, by every key."""
    pids = [r["profile_id"] for r in e.sql("SELECT profile_id FROM profiles").to_pylist()]
    assert "materialized" in e.online.capabilities
    for pid in pids:
        assert e.online.profile(pid, 50) == e.store.profile(pid, 50), pid
    return pids


def test_a_file_import_reacts_once_for_all_its_chunks(project, tmp_path):
    path = _orders_file(tmp_path / "orders.jsonl")
    with Engine(project) as e:
        e.segments.create("buyers", BUYERS, refresh=False)
        seen = []
        e.bus.subscribe(PROFILES_CHANGED, seen.append)
        report = e.ingest(path, chunk_size=60)                    # 4 chunks, each touching all 50 profiles
        assert report.accepted == 200
        writes = [m for m in seen if m.origin == "write"]
        assert len(writes) == 1
        pids = _online_agrees_with_store(e)
        assert sorted(writes[0].touched) == sorted(pids) and len(pids) == 50
        assert e.profile("a7")["computed"]["event_count"] == 4
        # Realtime segments judged the final state once: every visitor entered, once.
        assert e.segments.show("buyers")["size"] == 50
        assert len(e.segments.history(segment_id="buyers", limit=1000)) == 50
        assert {s["segment_id"] for s in e.profile("a7")["segments"]} == {"buyers"}


def test_a_merge_in_a_later_chunk_leaves_no_stale_key(project, tmp_path):
    """A profile touched by chunk 1 and merged away in chunk 2 is removed, not
    written back: its `profile:` key must lead to the survivor."""
    lines = [
        {"type": "page", "anonymousId": "a1", "messageId": "m1", "timestamp": T},
        {"type": "page", "anonymousId": "a2", "messageId": "m2", "timestamp": T},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m3", "timestamp": T},
        {"type": "track", "event": "X", "userId": "u1", "anonymousId": "a2", "messageId": "m4", "timestamp": T},
    ]
    path = tmp_path / "merge.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with Engine(project) as e:
        seen = []
        e.bus.subscribe(PROFILES_CHANGED, seen.append)
        e.ingest(path, chunk_size=2)
        (message,) = [m for m in seen if m.origin == "write"]
        assert len(message.removed) == 1 and not set(message.removed) & set(message.touched)
        survivor = e.store.resolve("u1")
        (gone,) = message.removed
        assert e.resolve(f"profile:{gone}") == survivor == e.resolve("a2") == e.resolve("a1")
        assert e.profile(f"profile:{gone}")["profile_id"] == survivor
        assert _online_agrees_with_store(e) == [survivor]


def test_a_projection_in_many_parts_writes_every_document_and_the_watermark_last(project, tmp_path, monkeypatch):
    """Parts are read ahead in another thread while the previous one is written:
    every part must land, in order, and the watermark only with the last."""
    from personable.profiles import projection

    monkeypatch.setattr(projection, "CHUNK", 7)                   # 50 profiles: 8 parts
    path = _orders_file(tmp_path / "orders.jsonl")
    with Engine(project) as e:
        marks = []
        apply = e.online.apply
        monkeypatch.setattr(e.online, "apply", lambda docs, keys, removed, mark: (marks.append(mark), apply(docs, keys, removed, mark)))
        e.ingest(path)
        assert len(marks) == 8 and marks[:-1] == [None] * 7 and marks[-1] is not None
        assert len(_online_agrees_with_store(e)) == 50
        assert e.components.projection.pending() == ([], None)


def test_a_failed_part_stops_the_projection_after_its_read_ahead_ends(project, tmp_path, monkeypatch):
    """The next part is read while one is written: when the write fails, the
    error goes on only once that read is over (it must not run on into a store
    being closed), and no watermark is recorded."""
    from personable.errors import StoreError
    from personable.profiles import projection

    monkeypatch.setattr(projection, "CHUNK", 7)
    path = _orders_file(tmp_path / "orders.jsonl")
    with Engine(project) as e:
        e.ingest(path)
        proj, mark = e.components.projection, e.online.watermark()
        started, finished = [], []
        read = proj._read

        def slow_read(part):
            started.append(len(part))
            time.sleep(0.2)
            rows = read(part)
            finished.append(len(part))
            return rows

        applied = []

        def failing_apply(docs, keys, removed, watermark):
            applied.append(len(docs))
            if len(applied) == 2:
                deadline = time.monotonic() + 5      # fail once the third part's read is under way
                while len(started) < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                raise StoreError("online store down")
            apply(docs, keys, removed, watermark)

        apply = e.online.apply
        monkeypatch.setattr(proj, "_read", slow_read)
        monkeypatch.setattr(e.online, "apply", failing_apply)
        pids = [r["profile_id"] for r in e.sql("SELECT profile_id FROM profiles").to_pylist()]
        with pytest.raises(StoreError, match="online store down"):
            proj.project(pids, [], datetime.now(timezone.utc))
        assert len(started) == 3 and finished == started and len(applied) == 2
        assert e.online.watermark() == mark


def test_a_duckdb_import_checkpoints_once_at_its_end(project, tmp_path):
    """Each checkpoint writes the indexes out whole: an import must not pay one
    every few chunks. A threshold this low would checkpoint after every chunk."""
    path = _orders_file(tmp_path / "orders.jsonl")
    with Engine(project) as e:
        e.store._root.execute("SET checkpoint_threshold = '1 KiB'")
        wal = Path(e.store.path + ".wal")
        sizes: list[int] = []
        e.ingest(path, chunk_size=60, progress=lambda done, total: sizes.append(wal.stat().st_size if wal.exists() else 0))
        # The WAL only grows while the chunks commit; the import's end checkpoints it away
        # and gives the store its own threshold back.
        assert sizes[1] > 0 and sizes[1:] == sorted(sizes[1:]) and len(set(sizes[1:])) == len(sizes[1:])
        assert not wal.exists() or wal.stat().st_size == 0
        assert e.store._root.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0] == "1.0 KiB"


def test_overlapping_imports_keep_the_threshold_raised_until_the_last_ends(project, tmp_path):
    """The threshold is the database's: the first import to end must not put it
    back under another one still running, nor the last leave it raised."""
    from personable.ports import StagedInput

    path = _orders_file(tmp_path / "orders.jsonl")
    staged = StagedInput(source="import", origin=str(path), file=str(path), require_timestamp=True)
    with Engine(project) as e:
        def threshold() -> str:
            return e.store._root.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0]

        before = threshold()
        first, second = e.store.open_file(staged), e.store.open_file(staged)
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)          # the first to start ends first
        assert threshold() == "1000.0 GiB"        # the other still runs
        second.__exit__(None, None, None)
        assert threshold() == before


def test_the_import_checkpoint_covers_the_reactions_writes_too(project, tmp_path):
    """Realtime segments write memberships when the import publishes: that must
    happen before the import's checkpoint, or closing the store pays a second one."""
    path = _orders_file(tmp_path / "orders.jsonl")
    with Engine(project) as e:
        e.segments.create("buyers", BUYERS, refresh=False)
        e.ingest(path, chunk_size=60)
        assert e.segments.show("buyers")["size"] == 50
        wal = Path(e.store.path + ".wal")
        assert not wal.exists() or wal.stat().st_size == 0


def test_a_failing_chunk_still_publishes_what_the_earlier_ones_committed(project, tmp_path, monkeypatch):
    path = _orders_file(tmp_path / "orders.jsonl")
    with Engine(project) as e:
        write = e.components.write_path.write
        calls = []

        def second_chunk_fails(batch):   # fault injection: the real write path, failing on chunk 2
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("disk full")
            return write(batch)

        monkeypatch.setattr(e.components.write_path, "write", second_chunk_fails)
        with pytest.raises(RuntimeError, match="disk full"):
            e.ingest(path, chunk_size=60)
        assert e.stats()["events"] == 60
        assert len(_online_agrees_with_store(e)) == 50
        # Chunk 1 (60 events over 50 visitors) gave a7 two orders, a30 one: their documents say so.
        assert (e.profile("a7")["computed"]["event_count"], e.profile("a30")["computed"]["event_count"]) == (2, 1)


KILLED_IMPORT = """
import os, sys
from personable import Engine

def stop_after_first_chunk(done, total):
    if done >= 60:
        os._exit(3)   # killed: no finally, no end-of-import message

with Engine(sys.argv[1]) as e:
    e.segments.create("buyers", {"name": "Buyers", "rule": {"event": "Order Completed", "count": {"gte": 2}}},
                      refresh=False)
    e.ingest(sys.argv[2], chunk_size=60, progress=stop_after_first_chunk)
"""


def test_an_import_killed_between_chunks_is_caught_up_on_the_next_open(project, tmp_path):
    path = _orders_file(tmp_path / "orders.jsonl", visitors=30)   # 120 events: chunk 1 holds 2 orders each
    src = str(Path(personable.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", KILLED_IMPORT, str(project), str(path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    # The first chunk is committed, but neither projected nor judged.
    online = sqlite3.connect(project / ".personable" / "online.sqlite")
    assert online.execute("SELECT count(*) FROM docs").fetchone()[0] == 0
    online.close()
    with Engine(project) as e:
        assert e.stats()["events"] == 60
        assert len(_online_agrees_with_store(e)) == 30
        assert e.segments.show("buyers")["size"] == 30
        assert {s["segment_id"] for s in e.profile("a3")["segments"]} == {"buyers"}
    with Engine(project) as e:   # caught up: the next open has nothing to do, the answers stand
        assert e.components.projection.pending() == ([], None)
        assert e.profile("a3")["computed"]["event_count"] == 2


def _merge_scenario(project: Path, tmp_path: Path) -> dict:
    """Orders under two anonymous profiles that a later event merges: the
    merged-away profile's events count for the survivor."""
    lines = [
        {"type": "track", "event": "Order Completed", "anonymousId": "a1", "messageId": "o1", "timestamp": T,
         "properties": {"order_id": "o1", "revenue": 5}},
        {"type": "track", "event": "Order Completed", "anonymousId": "a2", "messageId": "o2", "timestamp": T,
         "properties": {"order_id": "o2", "revenue": 5}},
        {"type": "track", "event": "Order Completed", "anonymousId": "a3", "messageId": "o3", "timestamp": T,
         "properties": {"order_id": "o3", "revenue": 5}},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "i1", "timestamp": T},
        {"type": "page", "userId": "u1", "anonymousId": "a2", "messageId": "p1", "timestamp": T},
    ]
    with Engine(project) as e:
        e.segments.create("buyers", BUYERS, refresh=False)
        for line in lines:   # one batch each, as over HTTP
            e.send([line])
        return {"members": sorted(m["profile_id"] for m in e.segments.members("buyers")),
                "u1": e.resolve("u1")}


def test_realtime_copies_by_index_or_by_join_agree(project, tmp_path, monkeypatch):
    """Few ids are looked up through the index, many are joined by hash: both
    must copy the same rows (merged-away profiles' events included)."""
    by_index = _merge_scenario(project, tmp_path)
    monkeypatch.setattr(_Among, "INDEX_LOOKUPS_MAX", 0)
    other = tmp_path / "joined"
    from personable.config import write_starter
    write_starter(other, "test-shop")
    by_join = _merge_scenario(other, tmp_path)
    assert by_index["members"] == [by_index["u1"]] and by_join["members"] == [by_join["u1"]]
