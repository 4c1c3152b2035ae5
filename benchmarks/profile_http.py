"""Where the request path's time goes: sample a running `personable serve`
with py-spy while the architecture benchmark's load runs against it (the same
full-context bodies), and print the functions by share of samples, per thread.

  python benchmarks/profile_http.py [--py-spy PATH] [--seconds 5] [--gil]

py-spy samples every thread of the server process from outside (the event
loop answering requests, the log worker storing them, the realtime flusher),
so nothing in the server changes for the profile. `/v1/track` runs open loop
at 1,000 req/s; `/v1/batch` closed loop on 4 connections, 100 events each.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))


def _frames(stack: str) -> list[str]:
    """`func (file.py:line)` frames of one collapsed py-spy stack, outermost first,
    with the line numbers dropped so a function counts once."""
    return [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]


def summarize(raw: Path, top: int) -> str:
    threads: dict[str, Counter[str]] = defaultdict(Counter)
    leaves: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = _frames(stack)
        thread, frames = frames[0], frames[1:]
        n = int(count)
        totals[thread] += n
        for f in set(frames):
            threads[thread][f] += n
        if frames:
            leaves[thread][frames[-1]] += n
    out = []
    for thread, total in totals.most_common():
        out.append(f"\n== {thread}: {total} samples")
        out.append("  inclusive (share of this thread's samples; personable's functions, less the ones"
                   " on nearly every stack):")
        shown = [(f, n) for f, n in threads[thread].most_common()
                 if "personable" in f and n < 0.97 * total][:top]
        for f, n in shown:
            out.append(f"    {100 * n / total:5.1f}%  {f}")
        out.append("  self:")
        for f, n in leaves[thread].most_common(12):
            out.append(f"    {100 * n / total:5.1f}%  {f}")
    return "\n".join(out)


def main() -> None:
    from arch_bench import _bodies
    from conftest import start_server, stop_server
    from loadgen import post_requests, run_closed, run_raw
    from personable.config import write_starter
    from realistic_events import generate

    ap = argparse.ArgumentParser()
    ap.add_argument("--py-spy", default=shutil.which("py-spy"), help="path of the py-spy binary")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--work", default="bench-data/profile-http")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--gil", action="store_true",
                    help="sample only the thread holding the GIL: who keeps the request thread waiting")
    args = ap.parse_args()
    if not args.py_spy:
        sys.exit("py-spy not found: pip install py-spy, or pass --py-spy PATH")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    events = work / "realistic.jsonl"
    generate(events, 40_000, 20_000)
    track, batch = _bodies(events, int(args.rate * args.seconds), 300, 100)
    write_starter(work / "proj", "profile-http")
    server = start_server(work / "proj")
    try:
        for name, load in (
                ("track", lambda: run_raw(server.url, post_requests(server.url, "/v1/track", track,
                                                                    server.write_key), args.rate)),
                ("batch", lambda: run_closed(server.url, post_requests(server.url, "/v1/batch", batch,
                                                                       server.write_key), args.seconds))):
            raw = work / f"{name}.txt"
            spy = subprocess.Popen([args.py_spy, "record", "--pid", str(server.proc.pid), "--rate", "250",
                                    "--format", "raw", "--threads", "--nonblocking", "--output", str(raw),
                                    "--duration", str(int(args.seconds) + 2), *(["--gil"] if args.gil else [])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)
            result = load()
            spy.wait(timeout=60)
            print(f"\n######## /v1/{name}: {result[-1]:.1f} {'req/s achieved' if name == 'track' else 's'}, "
                  f"{len(result[1])} responses")
            print(summarize(raw, args.top))
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
