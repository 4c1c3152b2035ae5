"""Where `Engine.ingest`'s time goes: cProfile one ingest of a file (default:
a generated realistic-profiles file) and print the write path's functions by
cumulative time, so the phases (staging/parsing, dedupe, stitching, profile
updates, online documents, realtime segments) can be read off.

  python benchmarks/profile_ingest.py [--events N] [--file F.jsonl] [--top 45]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    from personable import Engine
    from personable.config import write_starter
    from realistic_events import generate

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--file", help="profile this JSONL file instead of generating one")
    ap.add_argument("--work", default="bench-data/profile")
    ap.add_argument("--top", type=int, default=45)
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = Path(args.file) if args.file else work / "realistic.jsonl"
    if not args.file:
        generate(path, args.events)
    write_starter(work / "proj", "profile")
    with Engine(work / "proj") as engine:
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        report = engine.ingest(path)
        prof.disable()
        print(f"{report.accepted:,} events in {time.perf_counter() - t:.1f} s under the profiler")
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats("personable", args.top)
    stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
