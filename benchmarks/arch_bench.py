"""Issue 11, point 8: file ingest and HTTP, each as a ratio to a reference
measured in the same run.

- File ingest (`Engine.ingest`, full write path, default starter config) of two
  files against DuckDB's raw `read_json` of the same file: the realistic-profiles
  file (realistic_events.py: 200k visitors, 5% identifying, full context) and
  the simulator's file (few profiles, many events each).
- HTTP: `/v1/track` open loop at 1,000 req/s and `/v1/batch` (100 events per
  request, closed loop) against `personable serve` and against the reference
  app (reference_app.py: uvicorn, append + fsync only), same load generator.

Every measurement runs ``repeats`` times (the machine is shared); each
ingest runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, not ru_maxrss, which Linux carries over
    from the parent through fork and exec (a spawned child would report the
    bench process's own peak, ~1.3 GB after simulating the store)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _raw(path: str, db: str) -> dict:
    import duckdb

    Path(db).unlink(missing_ok=True)
    con = duckdb.connect(db)
    t = time.perf_counter()
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_json('{path}')")
    secs = time.perf_counter() - t
    rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    con.close()
    return {"seconds": secs, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


def _ours(path: str, project: str) -> dict:
    import shutil

    from personable import Engine
    from personable.config import write_starter

    shutil.rmtree(project, ignore_errors=True)
    write_starter(Path(project), "bench-arch")
    with Engine(Path(project)) as engine:
        t = time.perf_counter()
        report = engine.ingest(path)
        secs = time.perf_counter() - t
    return {"seconds": secs, "accepted": report.accepted, "quarantined": report.quarantined,
            "profiles_created": report.profiles_created, "peak_rss_mb": _peak_rss_mb()}


def _fresh(fn, *args) -> dict:
    os.sync()  # the previous phase's dirty pages are not this one's cost
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(fn, args)


def ingest_ratio(work: Path, path: Path, repeats: int) -> list[dict]:
    runs = []
    for i in range(repeats):
        raw = _fresh(_raw, str(path), str(work / "raw.duckdb"))
        ours = _fresh(_ours, str(path), str(work / "ingest-proj"))
        runs.append({"events": raw["rows"], "raw_s": raw["seconds"], "raw_rss_mb": raw["peak_rss_mb"],
                     "ours_s": ours["seconds"], "ours_rss_mb": ours["peak_rss_mb"], "accepted": ours["accepted"],
                     "quarantined": ours["quarantined"], "profiles": ours["profiles_created"],
                     "events_per_s": raw["rows"] / ours["seconds"], "ratio": raw["seconds"] / ours["seconds"]})
        print(f"ingest {path.name} run {i + 1}: {json.dumps(runs[-1])}", flush=True)
    return runs


# --- HTTP ------------------------------------------------------------------

def _start_reference(work: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from conftest import free_port

    port = free_port()
    log = work / "reference.log"
    log.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(HERE / "reference_app.py"), str(port), str(log)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("reference app did not start in 30 s")


def _bodies(events_file: Path, track_n: int, batch_n: int, per_batch: int) -> tuple[list[bytes], list[bytes]]:
    """Track bodies and batch bodies from the realistic file's lines (full
    context, distinct messageIds, so the real server dedupes nothing)."""
    track, batch, chunk = [], [], []
    with events_file.open("rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if len(track) < track_n:
                if b'"type":"track"' in line:
                    track.append(line)
                continue
            chunk.append(line)
            if len(chunk) == per_batch:
                batch.append(b'{"batch":[' + b",".join(chunk) + b"]}")
                chunk = []
                if len(batch) == batch_n:
                    break
    return track, batch


def _measure(url: str, write_key: str, track: list[bytes], batch: list[bytes], rate: float,
             batch_seconds: float, per_batch: int) -> dict:
    from loadgen import post_requests, run_closed, run_raw

    lat, statuses, achieved = run_raw(url, post_requests(url, "/v1/track", track, write_key), rate)
    assert set(statuses) == {200}, set(statuses)
    time.sleep(1.0)
    answered, bstatuses, secs = run_closed(url, post_requests(url, "/v1/batch", batch, write_key), batch_seconds)
    assert set(bstatuses) == {200}, set(bstatuses)
    return {"track_p50_ms": _pct(lat, 0.5), "track_p99_ms": _pct(lat, 0.99), "track_achieved_rps": achieved,
            "batch_events_per_s": answered * per_batch / secs, "batch_requests": answered}


# personable as configured, and with the settings that change the server's process layout.
VARIANTS = {"ours": {},
            "one_process": {"store_process": "false"},
            "store_nice_10": {"store_nice": "10"}}


def with_server_settings(yaml_text: str, settings: dict[str, str]) -> str:
    """The starter's text with these ``server:`` settings. Each must replace its
    line exactly once: a replacement that silently matched nothing once made
    the three variants one configuration."""
    import re

    for key, value in settings.items():
        yaml_text, n = re.subn(rf"^  {key}: .*$", f"  {key}: {value}", yaml_text, flags=re.MULTILINE)
        if n != 1:
            raise RuntimeError(f"server.{key} is not in the starter once ({n} times)")
    return yaml_text


def _drain(server) -> float:
    """Wait until the server has stored everything it acknowledged (a store
    still catching up must not run beside the next measurement); returns how long that took."""
    import httpx

    t = time.perf_counter()
    while httpx.get(f"{server.url}/v1/stats?fresh=true", headers=server.admin, timeout=60).status_code != 200:
        pass
    return time.perf_counter() - t


def http_ratio(work: Path, events_file: Path, repeats: int, rate: float = 1000.0, track_seconds: float = 5.0,
               batch_seconds: float = 5.0, per_batch: int = 100) -> list[dict]:
    """personable as configured (the store in its own process), in one process
    (``server.store_process: false``), with ``store_nice: 10``, and the
    reference app, one after another in each run."""
    from conftest import start_server, stop_server
    from personable.config import write_starter

    track, batch = _bodies(events_file, int(rate * track_seconds), 1500, per_batch)
    runs = []
    for i in range(repeats):
        measured = {}
        for variant, setting in VARIANTS.items():
            os.sync()
            project = work / f"http-{i}-{variant}"
            write_starter(project, "bench-arch-http")
            yaml = project / "personable.yaml"
            yaml.write_text(with_server_settings(yaml.read_text(), setting))
            server = start_server(project)
            try:
                measured[variant] = _measure(server.url, server.write_key, track, batch, rate, batch_seconds, per_batch)
                measured[variant]["drain_s"] = _drain(server)
            finally:
                stop_server(server)
        os.sync()
        proc, url = _start_reference(work)
        try:
            ref = _measure(url, "ref", track, batch, rate, batch_seconds, per_batch)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        ours, one = measured["ours"], measured["one_process"]
        runs.append({**measured, "ref": ref,
                     "track_p99_ratio": ours["track_p99_ms"] / ref["track_p99_ms"],
                     "batch_ratio": ours["batch_events_per_s"] / ref["batch_events_per_s"],
                     "one_process_track_p99_ratio": one["track_p99_ms"] / ref["track_p99_ms"],
                     "one_process_batch_ratio": one["batch_events_per_s"] / ref["batch_events_per_s"]})
        print(f"http run {i + 1}: {json.dumps(runs[-1])}", flush=True)
    return runs


def _http_process(work: str, events_file: str, repeats: int) -> list[dict]:
    sys.path.insert(0, str(HERE.parent / "tests"))
    sys.path.insert(0, str(HERE))
    return http_ratio(Path(work), Path(events_file), repeats)


# --- report ----------------------------------------------------------------

def run_architecture_benchmarks(work: Path, cmd: str, events: int, visitors: int, sim_customers: int,
                                sim_days: int, repeats: int = 2) -> str:
    from personable.simulator import StoreSpec, simulate
    from realistic_events import generate

    work.mkdir(parents=True, exist_ok=True)
    real_path = work / "realistic.jsonl"
    t = time.perf_counter()
    counts = generate(real_path, events, visitors)
    print(f"generated {real_path} in {time.perf_counter() - t:.1f} s: {counts}", flush=True)
    sim = simulate(work / "sim", StoreSpec(customers=sim_customers, days=sim_days, seed=11))
    realistic = ingest_ratio(work, real_path, repeats)
    simulated = ingest_ratio(work, Path(sim.events_path), repeats)
    # The load generator runs in a fresh process: it does not carry this one's objects.
    os.sync()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        http = pool.apply(_http_process, (str(work), str(real_path), repeats))
    return report(cmd, counts, realistic, simulated, http)


def _ingest_rows(name: str, runs: list[dict]) -> str:
    rows = []
    for i, r in enumerate(runs, 1):
        rows.append(f"| {name}, run {i} | {r['events']:,} | {r['raw_s']:.2f} s | {r['ours_s']:.2f} s | "
                    f"{r['events_per_s']:,.0f} | **{r['ratio']:.3f}x** | >= 0.3x | "
                    f"{r['ours_rss_mb']:,.0f} MB ({r['raw_rss_mb']:,.0f} MB) |")
    return "\n".join(rows)


def report(cmd: str, counts: dict, realistic: list[dict], simulated: list[dict], http: list[dict]) -> str:
    sim_profiles = simulated[0]["profiles"]
    http_rows = []
    for i, h in enumerate(http, 1):
        o, one, r = h["ours"], h["one_process"], h["ref"]
        http_rows.append(
            f"| run {i} | {o['track_p50_ms']:.1f} / {o['track_p99_ms']:.1f} ms | {one['track_p50_ms']:.1f} / "
            f"{one['track_p99_ms']:.1f} ms | {r['track_p50_ms']:.1f} / {r['track_p99_ms']:.1f} ms | "
            f"**{h['track_p99_ratio']:.2f}x** ({h['one_process_track_p99_ratio']:.2f}x) (<= 2x) | "
            f"{o['batch_events_per_s']:,.0f} | {one['batch_events_per_s']:,.0f} | {r['batch_events_per_s']:,.0f} | "
            f"**{h['batch_ratio']:.2f}x** ({h['one_process_batch_ratio']:.2f}x) (>= 0.5x) |")
    return f"""## Architecture (issue 11): ingest and HTTP against their references
Command: `{cmd}`. Targets from issue 11, point 8; every ratio is against a
reference measured in the same run, and every measurement ran twice (the
2-core machine was shared with other engineers' test runs).

### File ingest against DuckDB's raw `read_json` of the same file
`Engine.ingest` (full write path, default starter config, default chunks of
250k events), each run in a fresh process after `os.sync()`. Ratio = raw
time / our time. Peak RSS is the process's VmHWM (raw's in brackets).

- *Realistic profiles* (benchmarks/realistic_events.py, generated at run
  time): {counts['events']:,} events over {counts['visitors']:,} anonymous visitors, of
  whom {counts['identified']:,} identified (identify with userId + email; their later
  events carry the userId); {counts['page']:,} pages, {counts['track']:,} tracks
  ({counts['orders']:,} Order Completed), {counts['identify']:,} identifies; a full Segment
  `context` (library, page, userAgent, ip, locale, campaign, device) on each,
  ISO timestamps over 30 days.
- *Simulator* (personable.simulator, seed 11): {simulated[0]['events']:,} events, {sim_profiles:,} profiles.

| file | events | raw `read_json` | `Engine.ingest` | events/s | ratio | target | peak RSS |
|---|---|---|---|---|---|---|---|
{_ingest_rows("realistic profiles", realistic)}
{_ingest_rows("simulator", simulated)}

### HTTP against the reference app
The reference (benchmarks/reference_app.py) is the smallest ASGI app on the
same stack with the same uvicorn settings as `personable serve`: its POST
handler reads the body, appends it to a file and fsyncs (concurrent requests
share one fsync, as personable's event log does), and answers 200 JSON. Both run as their own process on 127.0.0.1 with
one worker; the same load generator (benchmarks/loadgen.py, another process)
drives both with the same bodies, taken from the realistic file (full context).
`/v1/track`: open loop at 1,000 req/s for 5 s (5,000 requests, latency from each
request's scheduled start). `/v1/batch`: 100 events per request, closed loop on
4 connections for 5 s, acknowledged events/s.

personable runs as configured (the store in its own process) and, in
brackets and in the "one process" columns, with `server.store_process: false`.

| | track p50 / p99, personable | one process | reference | p99 ratio (one process) | batch events/s, personable | one process | reference | batch ratio (one process) |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(http_rows)}
"""


def main() -> None:
    """``python benchmarks/arch_bench.py http [REPEATS]``: the HTTP measurement
    alone (a 200k-event realistic file, generated), as JSON lines per run.
    ``python benchmarks/arch_bench.py ingest FILE.jsonl [REPEATS]``: the ingest
    ratio alone, on a file made earlier (e.g. by ``benchmarks/run.py``)."""
    import shutil

    if len(sys.argv) >= 3 and sys.argv[1] == "ingest":
        work = HERE.parent / "bench-data" / "ingest-ratio"
        work.mkdir(parents=True, exist_ok=True)
        ingest_ratio(work, Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2)
        return
    if len(sys.argv) < 2 or sys.argv[1] != "http":
        sys.exit("usage: python benchmarks/arch_bench.py http [REPEATS] | ingest FILE.jsonl [REPEATS]")
    sys.path.insert(0, str(HERE.parent / "tests"))
    sys.path.insert(0, str(HERE))
    from realistic_events import generate

    work = HERE.parent / "bench-data" / "arch-http"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    events = work / "realistic.jsonl"
    generate(events, 200_000, 40_000)
    http_ratio(work, events, int(sys.argv[2]) if len(sys.argv) > 2 else 2)


if __name__ == "__main__":
    main()
