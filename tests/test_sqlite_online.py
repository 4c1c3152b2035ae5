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
