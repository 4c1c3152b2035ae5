"""The embedded store's compaction (an erasure rewrites the DuckDB file so that
deleted rows leave no trace in it): reads and writes on other threads while it
runs neither fail nor are lost, an import under way holds it off, and the
rewritten file keeps its sequences, indexes and every row."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from personable.adapters.duckdb.store import DuckDBStore

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _quarantined(store: DuckDBStore, n: int, tag: str) -> None:
    store.add_quarantine([{"received_at": NOW, "source": "test", "origin": tag, "record_no": i,
                           "message_id": f"{tag}-{i}", "problems": [{"path": "$", "problem": "bad"}],
                           "raw": f'{{"n": {i}}}'} for i in range(n)])


def test_a_compaction_keeps_every_row_sequence_and_index(tmp_path):
    store = DuckDBStore(tmp_path / "store.duckdb")
    _quarantined(store, 3, "before")
    with store._writing() as db:
        db.execute("INSERT INTO identities (kind, value, profile_id) VALUES ('user_id', 'u1', 'p1')")
    assert store.compact()
    _quarantined(store, 2, "after")
    ids = [r[0] for r in store._session().rows("SELECT id FROM quarantine ORDER BY id")]
    assert ids == sorted(set(ids)) and len(ids) == 5          # the sequence went on where it was
    assert store.resolve("u1") == "p1"
    with store._writing() as db:                               # the primary key still holds
        try:
            db.execute("INSERT INTO identities (kind, value, profile_id) VALUES ('user_id', 'u1', 'p2')")
            raised = False
        except Exception:
            raised = True
    assert raised
    assert "_compaction_token" not in store.table_columns()
    store.close()
    reopened = DuckDBStore(tmp_path / "store.duckdb")
    assert reopened._session().rows("SELECT count(*) FROM quarantine")[0][0] == 5
    reopened.close()


def test_reads_and_writes_on_other_threads_survive_compactions(tmp_path):
    store = DuckDBStore(tmp_path / "store.duckdb")
    with store._writing() as db:
        db.execute("INSERT INTO identities (kind, value, profile_id) VALUES ('user_id', 'u1', 'p1')")
    errors: list[BaseException] = []
    written = [0]
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                assert store.resolve("u1") == "p1"
                assert store.sql("SELECT count(*) AS n FROM identities").column("n")[0].as_py() == 1
                store._session().rows("SELECT count(*) FROM quarantine")
            except BaseException as exc:      # noqa: BLE001 -- any failure is the finding
                errors.append(exc)
                return

    def writer() -> None:
        while not stop.is_set():
            try:
                _quarantined(store, 1, "w")
                written[0] += 1
                with store._writing() as db:
                    db.execute("UPDATE identities SET first_seen = now()")
            except BaseException as exc:      # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            assert store.compact()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert written[0] > 0
    assert store._session().rows("SELECT count(*) FROM quarantine")[0][0] == written[0]   # none lost
    store.close()


def test_an_import_under_way_holds_a_compaction_off(tmp_path):
    store = DuckDBStore(tmp_path / "store.duckdb")
    with store._import_running():
        assert store.compact() is False
    assert store.compact() is True
    store.close()
