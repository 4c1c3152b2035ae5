"""What only the SQLite online store has: the tables a dead writer left
behind are cleaned up. Its contract is tests/contract/test_online_store.py."""

from __future__ import annotations

import os
import sqlite3

from personable.adapters.sqlite_online import SQLiteOnlineStore


def test_a_dead_writers_half_written_generation_is_dropped_by_the_next_replacement(tmp_path):
    store = SQLiteOnlineStore(tmp_path / "online.sqlite")
    dead = 2 ** 22 + 7   # above Linux's largest PID: no process has it
    con = sqlite3.connect(tmp_path / "online.sqlite")
    for name in (f"recommendations_staging_{dead}_abc", f"recommendations_retired_{dead}_abc",
                 f"recommendations_staging_{os.getpid()}_live"):
        con.execute(f"CREATE TABLE {name} (profile_id TEXT PRIMARY KEY, payload BLOB NOT NULL) WITHOUT ROWID")
    con.commit()
    store.put_recommendations([("p1", b"x")], replace_all=True)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"lookup", "docs", "meta", "recommendations", f"recommendations_staging_{os.getpid()}_live"}
    assert store.recommendations("p1") == b"x"
    con.close()
    store.close()


def test_new_stores_use_16k_pages_and_old_4k_stores_keep_working(tmp_path):
    new = SQLiteOnlineStore(tmp_path / "new.sqlite")
    assert new._con().execute("PRAGMA page_size").fetchone()[0] == 16384
    new.close()
    old_path = tmp_path / "old.sqlite"
    old = sqlite3.connect(old_path)       # a store made before: 4 KB pages, WAL
    old.execute("PRAGMA page_size=4096")
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE docs (profile_id TEXT PRIMARY KEY, doc BLOB NOT NULL) WITHOUT ROWID")
    old.close()
    store = SQLiteOnlineStore(old_path)
    assert store._con().execute("PRAGMA page_size").fetchone()[0] == 4096
    doc = '{"profile_id": "p2", "recent_events": []}'
    # Written in key order whatever order they come in; a key given twice goes to the last profile named.
    store.apply([("p2", doc), ("p1", doc.replace("p2", "p1"))], [("user_id:b", "p2"), ("user_id:a", "p1"),
                                                               ("user_id:b", "p1")], [], "2026-01-01T00:00:00+00:00")
    assert store.profile("p1")["profile_id"] == "p1" and store.resolve("user_id:b") == "p1"
    assert store.watermark() == "2026-01-01T00:00:00+00:00"
    store.close()
