"""`make bench`: measured numbers, each against a reference from the same run,
written with the exact command to docs/benchmarks.md.

  python benchmarks/run.py [--only SECTION] [--arch-events N] [--customers N] ...
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def bench_file_ingest(work: Path, customers: int, days: int) -> dict:
    from personable import Engine
    from personable.config import write_starter
    from personable.simulator import StoreSpec, simulate

    sim = simulate(work / "sim", StoreSpec(customers=customers, days=days, seed=11))
    raw = duckdb.connect(str(work / "raw.duckdb"))
    t = time.perf_counter()
    raw.execute(f"CREATE TABLE raw AS SELECT * FROM read_json('{sim.events_path}')")
    raw_secs = time.perf_counter() - t
    raw.close()
    write_starter(work / "proj", "bench")
    with Engine(work / "proj") as engine:
        t = time.perf_counter()
        report = engine.ingest(sim.events_path, chunk_size=1_000_000)
        secs = time.perf_counter() - t
    return {"events": sim.events, "seconds": secs, "events_per_s": sim.events / secs,
            "raw_duckdb_seconds": raw_secs, "ratio_to_raw": raw_secs / secs, "accepted": report.accepted}


N_TRACK = 1000


def fsync_reference(path: Path, n: int = 2000, rate: float = 1000.0) -> dict:
    """The disk's own fsync latency, paced like the /v1/track load: append a
    line and fsync, n times at ``rate`` per second. What the event log can do
    at best on this disk, measured in the same run."""
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = time.perf_counter()
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            os.write(fd, b"x" * 200 + b"\n")
            os.fsync(fd)
            lat.append((time.perf_counter() - due) * 1000)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return {"fsync_p50_ms": pct(lat, 0.5), "fsync_p99_ms": pct(lat, 0.99)}


def bench_http(work: Path, seconds: float = 5.0, track_rate: float = 1000.0) -> dict:
    import httpx

    from conftest import start_server, stop_server
    from loadgen import run as open_loop
    from personable.config import write_starter

    write_starter(work / "http", "bench-http")
    server = start_server(work / "http")
    try:
        batch = [{"type": "track", "userId": f"u{i % 500}", "event": "Product Viewed",
                  "properties": {"product_id": f"p{i}", "price": 9.5}, "timestamp": "2026-02-01T10:00:00Z"}
                 for i in range(500)]
        body = json.dumps({"batch": batch}).encode()
        sent = 0
        with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=60) as c:
            t = time.perf_counter()
            while time.perf_counter() - t < seconds:
                assert c.post("/v1/batch", content=body, headers={"Content-Type": "application/json"}).status_code == 200
                sent += len(batch)
            accept_secs = time.perf_counter() - t
        # A client without Basic auth: its Authorization header would override the admin bearer.
        with httpx.Client(base_url=server.url, timeout=120, headers=server.admin) as admin:
            assert admin.get("/v1/stats", params={"fresh": "true"}).status_code == 200
            stored_secs = time.perf_counter() - t
            track = [json.dumps({"userId": f"t{i % 300}", "event": "X", "timestamp": "2026-02-01T10:00:00Z"}).encode()
                     for i in range(int(track_rate * seconds))]
            lat, statuses, achieved = open_loop(server.url, "/v1/track", track, track_rate, server.write_key)
            assert set(statuses) == {200}, set(statuses)
            assert admin.get("/v1/stats", params={"fresh": "true"}).status_code == 200
            look = []
            for i in range(1000):
                s = time.perf_counter()
                r = admin.get(f"/v1/profiles/u{i % 500}", params={"events": 5})
                look.append((time.perf_counter() - s) * 1000)
                assert r.status_code == 200, r.text
    finally:
        stop_server(server)
    disk = fsync_reference(work / "fsync-probe.log")
    return {**disk, "batch_events_per_s": sent / accept_secs, "batch_stored_events_per_s": sent / stored_secs,
            "batch_events": sent, "track_requests": len(track), "track_rate": track_rate,
            "track_p50_ms": pct(lat, 0.5), "track_p99_ms": pct(lat, 0.99), "track_achieved_rps": achieved,
            "lookup_p50_ms": pct(look, 0.5), "lookup_p99_ms": pct(look, 0.99)}


HEADER = """# Benchmarks

Measured on the project's 2-core machine with `make bench` (which runs
`python benchmarks/run.py`); each section names the exact command that produced
it, and every number in a section comes from that one run.
"""


@functools.lru_cache(maxsize=1)
def code_commit() -> str:
    """The commit the measured code came from (with a mark if it had local
    edits); read once, when the run starts."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+local changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def write_section(path: Path, name: str, text: str) -> None:
    """Replace one section of the benchmarks document, keeping the others."""
    start, end = f"<!-- section: {name} -->", f"<!-- end: {name} -->"
    doc = path.read_text() if path.exists() else HEADER
    if not doc.startswith("# Benchmarks"):
        doc = HEADER
    block = f"{start}\n{text.strip()}\n\n_Measured at commit `{code_commit()}`._\n{end}"
    if start in doc and end in doc:
        doc = doc[:doc.index(start)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=11_500, help="simulated customers (11.5k x 60 days ~ 1M events)")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--only", choices=["foundation", "architecture", "resolution", "segments", "predict", "recommend",
                                       "privacy"], help="run one section only")
    ap.add_argument("--privacy-repeats", type=int, default=6, help="runs of the event log encryption benchmark")
    ap.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000],
                    help="person records for the resolution speed runs")
    ap.add_argument("--profiles", type=int, default=1_000_000, help="profiles for the segment refresh benchmark")
    ap.add_argument("--events", type=int, default=10_000_000, help="events for the segment refresh benchmark")
    ap.add_argument("--model-customers", type=int, nargs="+", default=[100_000, 1_000_000],
                    help="customers for the model training and scoring times")
    ap.add_argument("--sim-customers", type=int, default=8_000, help="simulated customers for the model quality")
    ap.add_argument("--rec-customers", type=int, default=5_000, help="simulated customers for recommendations")
    ap.add_argument("--arch-events", type=int, default=1_000_000,
                    help="events in the realistic-profiles file (issue 11's ingest ratio)")
    ap.add_argument("--arch-visitors", type=int, default=200_000, help="anonymous visitors in that file")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    code_commit()
    work = ROOT / "bench-data"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    cmd = ("python benchmarks/run.py " + " ".join(sys.argv[1:])).strip()
    if args.only in (None, "foundation"):
        foundation(args, work, cmd)
    if args.only in (None, "architecture"):
        from arch_bench import run_architecture_benchmarks

        write_section(Path(args.out), "architecture",
                      run_architecture_benchmarks(work / "arch", cmd, args.arch_events, args.arch_visitors,
                                                  args.customers, args.days))
        print(f"wrote {args.out}")
    if args.only in (None, "resolution"):
        from resolution_bench import run_resolution_benchmarks

        write_section(Path(args.out), "resolution", run_resolution_benchmarks(work, args.records, cmd))
        print(f"wrote {args.out}")
    if args.only in (None, "segments"):
        from segments_bench import run_segment_benchmarks

        write_section(Path(args.out), "segments", run_segment_benchmarks(work, cmd, args.profiles, args.events))
        print(f"wrote {args.out}")
    if args.only in (None, "recommend"):
        from recommend_bench import run_recommend_benchmarks

        write_section(Path(args.out), "recommend", run_recommend_benchmarks(work, cmd, args.rec_customers))
        print(f"wrote {args.out}")
    if args.only in (None, "privacy"):
        from encryption_bench import run as encryption_runs, table

        runs = encryption_runs(args.privacy_repeats, 5.0)
        write_section(Path(args.out), "privacy-encryption",
                      f"### Event log encrypted against plain (generated: `{cmd}`)\n\n{table(runs)}")
        print(f"wrote {args.out}")
    if args.only in (None, "predict"):
        from predict_bench import run_predict_benchmarks

        write_section(Path(args.out), "predict",
                      run_predict_benchmarks(work, cmd, args.model_customers, args.sim_customers))
        print(f"wrote {args.out}")


def foundation(args: argparse.Namespace, work: Path, cmd: str) -> None:
    ingest = bench_file_ingest(work, args.customers, args.days)
    print(json.dumps(ingest, indent=2))
    # The HTTP load runs from a fresh process, so the load generator does not
    # carry the simulator's million objects (and their GC pauses) from above, and
    # after the ingest's gigabyte of dirty pages is on disk: otherwise the event
    # log's fsyncs wait behind that writeback and /v1/track's p99 measures the
    # previous phase (seen: ~130 ms instead of ~12 ms).
    import multiprocessing
    import os

    os.sync()

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        http = pool.apply(bench_http, (work,))
    print(json.dumps(http, indent=2))
    text = f"""## Foundation: file ingest and HTTP (issue 2)
Command: `{cmd}`. Targets are from issue 2.

### File ingest (simulated store, JSONL, full write path)
Validation against the Segment and e-commerce spec, quarantine, dedupe, identity
stitching, profile aggregates, traits, consents and the online store's profile
documents, in chunks of one transaction each.

| measure | value | target |
|---|---|---|
| events | {ingest['events']:,} | 1M |
| ingest time | {ingest['seconds']:.2f} s | |
| events/s | {ingest['events_per_s']:,.0f} | >= 300,000 |
| DuckDB raw `read_json` of the same file (no validation, no profiles) | {ingest['raw_duckdb_seconds']:.2f} s | |
| ratio (raw time / our time) | {ingest['ratio_to_raw']:.2f} | >= 0.3 |

### HTTP (one uvicorn worker; load generator in another process on the same machine)
| measure | value | target |
|---|---|---|
| `/v1/batch` accepted events/s (500 per request, one client, {http['batch_events']:,} events) | {http['batch_events_per_s']:,.0f} | >= 30,000 |
| the same events stored (in profiles), events/s up to the last one | {http['batch_stored_events_per_s']:,.0f} | |
| `/v1/track` p50, open loop at {http['track_rate']:,.0f} req/s ({http['track_requests']:,} requests, achieved {http['track_achieved_rps']:,.0f} req/s) | {http['track_p50_ms']:.1f} ms | |
| `/v1/track` p99 (latency from each request's scheduled start) | {http['track_p99_ms']:.1f} ms | <= 15 ms |
| reference: the disk's own append + fsync at the same pace, p50 / p99, right after | {http['fsync_p50_ms']:.1f} / {http['fsync_p99_ms']:.1f} ms | |
| profile lookup p50 (`GET /v1/profiles/{{id}}`, sequential, over HTTP) | {http['lookup_p50_ms']:.2f} ms | |
| profile lookup p99 | {http['lookup_p99_ms']:.2f} ms | <= 5 ms |
"""
    write_section(Path(args.out), "foundation", text + NOTES)
    print(f"wrote {args.out}")


NOTES = """
### How to read these
- An HTTP event is acknowledged once it is in the durable event log (fsync'ed,
  shared by concurrent requests); a worker then stores it in batches, so the
  acknowledgement latency does not include the store's work. "Stored" above is
  the rate up to the moment a `fresh=true` read returns after the last batch.
- Profile lookups read a document from the embedded online store (SQLite),
  rebuilt for every profile a batch touches.
- Two things that once made `/v1/track` p99 ten times worse, both measured:
  disk writeback (right after the 1M-event ingest, without the `os.sync()`
  step, p99 was 126-129 ms: the event log's fsyncs waited behind the ingest's
  writeback -- a file import next to live traffic will still see this), and the
  garbage collector (full collections walking everything the server loaded
  stalled requests ~0.1 s; p99 60-110 ms until the server froze its start-up
  objects with `gc.freeze()`). The fsync row above shows the disk itself.
- File ingest is the target this code misses: 300k events/s would be about half
  of the raw `read_json` speed on these events, for a path that also validates
  every field, stitches identities and builds profiles. Where the time goes, from
  a cProfile of the same 1M-event file in one chunk (21.4 s in total under the
  profiler): staging (parsing, validating and quarantining in SQL) 7.5 s; the
  online store's profile documents 3.7 s to build and 2.6 s to write to SQLite
  (each document carries the profile's 50 latest events); applying the batch
  1.9 s (of which inserting the events 1.2 s); the data-quality step
  (standardization, rules) 1.3 s; reading the file into lines 0.7 s; realtime
  segments 0.6 s; normalizing identifiers (phone numbers) 0.6 s. Two earlier
  changes, measured when they were made: parsing each line once per call over
  all paths instead of once per field (parse 7.3 s -> 6.3 s), and no longer
  sorting events before inserting them (insert 2.4 s -> 0.7 s).
"""

if __name__ == "__main__":
    main()
