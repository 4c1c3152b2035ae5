"""How long an erasure takes: one person, and 1,000 people in one request,
on a store the simulator filled, against the same store's import as the
reference (the ratio says what share of an import an erasure costs).

  python benchmarks/erasure_bench.py [--customers 6000] [--days 60] [--postgres URL]

Each erasure runs on a fresh copy of the imported project (the embedded store
rewrites its file on every erasure: the cost grows with the store, not with
the people erased), and is verified clean afterwards (not timed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from personable import Engine
from personable.config import write_starter
from personable.simulator import StoreSpec, simulate


def _users(events: Path) -> list[str]:
    seen: dict[str, None] = {}
    for line in events.read_text().splitlines():
        uid = json.loads(line).get("userId")
        if uid:
            seen.setdefault(uid, None)
    return list(seen)


def _project(work: Path, name: str, offline: str | None) -> Path:
    project = work / name
    write_starter(project, "bench")
    if offline:
        cfg = project / "personable.yaml"
        cfg.write_text(cfg.read_text().replace("offline: duckdb:///.personable/store.duckdb", f"offline: {offline}"))
    return project


def _erase(project: Path, who: list[str]) -> tuple[float, dict]:
    with Engine(project) as engine:
        started = time.perf_counter()
        cert = engine.privacy.erase([f"user_id:{u}" for u in who], "bench")
        took = time.perf_counter() - started
        assert cert["state"] == "done" and engine.privacy.verify(who[:20])["clean"]
    return took, cert


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=6000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--postgres", help="also on this PostgreSQL server database URL (it is filled, then erased from)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="erasure-bench-"))
    sim = simulate(work / "sim", StoreSpec(customers=args.customers, days=args.days, seed=7))
    users = _users(sim.events_path)
    print(f"store: {sim.events} events, {len(users)} identified people")
    stores = [("duckdb", None)] + ([("postgres", args.postgres)] if args.postgres else [])
    for label, offline in stores:
        rows = []
        for n in (1, min(1000, len(users))):
            project = _project(work, f"{label}-{n}", offline)
            with Engine(project) as engine:
                started = time.perf_counter()
                engine.ingest(sim.events_path)
                imported = time.perf_counter() - started
            took, cert = _erase(project, users[:n])
            rows.append((n, took, imported, sum(cert["removed"]["tables"].values())))
            if offline:     # the next size starts from an empty database again
                with Engine(project) as engine:
                    with engine.store._writing() as db:
                        for table in engine.store.table_columns():
                            if table != "schema_migrations":
                                db.execute(f"DELETE FROM {table}")
            shutil.rmtree(project)
        for n, took, imported, removed in rows:
            print(f"{label}: erase {n:>5} people {took:7.2f} s ({took / n * 1000:8.1f} ms each), "
                  f"{removed} rows; import of the store {imported:6.2f} s; erase/import {took / imported:.3f}x")


if __name__ == "__main__":
    main()
