"""File ingest on the PostgreSQL offline store, against the embedded DuckDB
store and a raw DuckDB ``read_json`` of the same file, in one run (issue 11,
point 8: "Postgres-backed ingest is measured too; no target").

Both stores run the full write path (``Engine.ingest``, default starter
configuration); only ``store.offline`` differs. PostgreSQL is the private test
server (``scripts/test-services.sh start``) or ``--url``; each run gets a fresh
database. Two data shapes: the realistic-profiles file (many profiles, full
context) and the simulator's file (few profiles, many events each).

  python benchmarks/postgres_bench.py [--events 100000] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _server_url() -> str:
    subprocess.run(["bash", str(ROOT / "scripts" / "test-services.sh"), "start", "--no-install"], check=True,
                   capture_output=True)
    state = dict(line.split("=", 1) for line in (ROOT / ".test-services" / "state.env").read_text().splitlines())
    return state["PG_URL"]


def _fresh_database(server_url: str) -> tuple[str, str]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ingest(path: Path, project: Path, offline: str | None) -> dict:
    from personable import Engine
    from personable.config import write_starter

    shutil.rmtree(project, ignore_errors=True)
    write_starter(project, "bench")
    if offline:
        cfg = project / "personable.yaml"
        cfg.write_text(cfg.read_text().replace("offline: duckdb:///.personable/store.duckdb", f"offline: {offline}"))
    with Engine(project) as engine:
        t = time.perf_counter()
        report = engine.ingest(path)
        secs = time.perf_counter() - t
    return {"seconds": secs, "accepted": report.accepted, "profiles_created": report.profiles_created}


def _raw(path: Path, work: Path) -> float:
    import duckdb

    db = work / "raw.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    t = time.perf_counter()
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_json('{path}')")
    secs = time.perf_counter() - t
    con.close()
    return secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--url", help="a PostgreSQL server URL (default: the private test server)")
    ap.add_argument("--work", default=str(ROOT / "bench-data" / "postgres"))
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from realistic_events import generate

    from personable.simulator import StoreSpec, simulate

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    realistic = work / "realistic.jsonl"
    generate(realistic, args.events, visitors=max(1000, args.events // 5))
    sim = simulate(work / "sim", StoreSpec(customers=max(200, args.events // 70), days=60, seed=5))
    server = args.url or _server_url()
    results = {}
    for shape, path in (("realistic", realistic), ("simulator", sim.events_path)):
        raw = _raw(path, work)
        duck = _ingest(path, work / f"{shape}-duckdb", None)
        url, name = _fresh_database(server)
        try:
            pg = _ingest(path, work / f"{shape}-postgres", url)
        finally:
            _drop(server, name)
        assert pg["accepted"] == duck["accepted"], (shape, pg, duck)
        results[shape] = {
            "events": duck["accepted"], "raw_read_json_s": round(raw, 2),
            "duckdb_s": round(duck["seconds"], 2), "postgres_s": round(pg["seconds"], 2),
            "duckdb_events_per_s": round(duck["accepted"] / duck["seconds"]),
            "postgres_events_per_s": round(pg["accepted"] / pg["seconds"]),
            "postgres_vs_duckdb": round(duck["seconds"] / pg["seconds"], 3),
            "postgres_vs_raw": round(raw / pg["seconds"], 3),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
