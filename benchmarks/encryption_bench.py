"""What encrypting the event log at rest costs on the HTTP path: `/v1/track`
p99 (open loop, 1,000 req/s) and `/v1/batch` events per second (100 events
per request, closed loop), with the log encrypted (the default) as a ratio to
the same server with `?encrypted=false`, measured one after the other in each
run (the order alternates) on the realistic file's events (full context).

  python benchmarks/encryption_bench.py [--repeats 3] [--seconds 5]

File imports do not pass through the event log: encryption of the log does
not touch them. Targets (issue 12): throughput >= 0.8x, p99 within 1.2x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))


def _project(work: Path, name: str, encrypted: bool) -> Path:
    from personable.config import write_starter

    project = work / name
    write_starter(project, "bench-encryption")
    cfg = project / "personable.yaml"
    text, n = re.subn(r"^  bus: file:///\.personable/bus", "  bus: file:///.personable/bus"
                      + ("" if encrypted else "?encrypted=false"), cfg.read_text(), flags=re.MULTILINE)
    if n != 1:
        raise RuntimeError("the starter's bus line changed: update the bench")
    cfg.write_text(text)
    return project


def run(repeats: int, seconds: float, rate: float = 1000.0) -> list[dict]:
    from arch_bench import _bodies, _drain, _measure
    from conftest import start_server, stop_server
    from realistic_events import generate

    work = Path(tempfile.mkdtemp(prefix="personable-encryption-bench-"))
    events = work / "events.jsonl"
    generate(events, events=int(rate * seconds) + 200 * 100, visitors=20_000)
    track, batch = _bodies(events, int(rate * seconds), 200, 100)
    runs = []
    for i in range(repeats):
        measured = {}
        order = ("encrypted", "plain") if i % 2 == 0 else ("plain", "encrypted")
        for variant in order:
            os.sync()
            server = start_server(_project(work, f"{variant}-{i}", variant == "encrypted"))
            try:
                measured[variant] = _measure(server.url, server.write_key, track, batch, rate, seconds, 100)
                measured[variant]["drain_s"] = _drain(server)
                sealed = b"".join(p.read_bytes()[:1] for p in (server.project / ".personable" / "bus").glob("*.log")
                                  if p.stat().st_size)
                measured[variant]["log_sealed"] = sealed.startswith(b"~") if sealed else None
            finally:
                stop_server(server)
        enc, plain = measured["encrypted"], measured["plain"]
        runs.append({**measured, "track_p99_ratio": enc["track_p99_ms"] / plain["track_p99_ms"],
                     "batch_ratio": enc["batch_events_per_s"] / plain["batch_events_per_s"]})
        print(json.dumps(runs[-1]), flush=True)
    return runs


def table(runs: list[dict]) -> str:
    """The runs as a markdown table, with the medians."""
    import statistics

    rows = ["| run | track p50 / p99, encrypted | plain | p99 ratio | batch events/s, encrypted | plain | ratio |",
            "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        e, p = r["encrypted"], r["plain"]
        rows.append(f"| {i} | {e['track_p50_ms']:.1f} / {e['track_p99_ms']:.1f} ms | {p['track_p50_ms']:.1f} / "
                    f"{p['track_p99_ms']:.1f} ms | {r['track_p99_ratio']:.2f}x | {e['batch_events_per_s']:,.0f} | "
                    f"{p['batch_events_per_s']:,.0f} | {r['batch_ratio']:.2f}x |")
    rows.append("")
    rows.append(f"Median p99 ratio **{statistics.median(r['track_p99_ratio'] for r in runs):.2f}x** (target: within "
                f"1.2x); median batch throughput ratio **{statistics.median(r['batch_ratio'] for r in runs):.2f}x** "
                "(target: >= 0.8x).")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(table(run(args.repeats, args.seconds)))


if __name__ == "__main__":
    main()
