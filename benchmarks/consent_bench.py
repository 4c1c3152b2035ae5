"""What consent enforcement on the write path costs: the same file imported
with ``privacy.collection_refused: minimize`` (the default: each batch asks the
consent policy about its profiles and moves a refusing profile's events to
events_minimized) against ``keep`` (no verdict is asked; every event is stored),
the reference, in the same run.

  python benchmarks/consent_bench.py [--customers 3000] [--events 200000] [--repeats 2]

Two files: the simulator's shop (its people deny analytics 15% of the time,
in identify traits) and the realistic file (200k visitors' worth of full-context
events, no consent in them: the check's cost where nothing is refused).
Runs alternate, so both modes see the same machine; the ratio is per pair.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from personable import Engine
from personable.config import write_starter
from personable.simulator import StoreSpec, simulate


def _import(work: Path, name: str, events: Path, mode: str) -> tuple[float, int]:
    project = work / name
    write_starter(project, "bench")
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["privacy"]["collection_refused"] = mode
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(project) as engine:
        started = time.perf_counter()
        report = engine.ingest(events)
        took = time.perf_counter() - started
    return took, report.refused_collection


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="consent-bench-"))
    sim = simulate(work / "sim", StoreSpec(customers=args.customers, days=60, seed=7)).events_path
    realistic = work / "realistic.jsonl"
    subprocess.run([sys.executable, str(Path(__file__).parent / "realistic_events.py"), str(realistic),
                    "--events", str(args.events), "--visitors", str(args.events // 5)], check=True)
    for label, path in (("simulator", sim), ("realistic", realistic)):
        lines = sum(1 for _ in open(path))
        ratios, rows = [], []
        for i in range(args.repeats):
            keep, _ = _import(work, f"{label}-keep-{i}", path, "keep")
            minimize, refused = _import(work, f"{label}-minimize-{i}", path, "minimize")
            ratios.append(keep / minimize)
            rows.append(f"| {label} ({lines:,} events) | {i + 1} | {keep:.2f} s | {minimize:.2f} s | {refused:,} | "
                        f"{keep / minimize:.2f}x |")
        print("\n".join(rows))
        print(f"{label}: median throughput ratio minimize/keep {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
