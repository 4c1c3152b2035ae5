"""The batch jobs on every offline store: the same simulated shop, ingested into
a DuckDB file and into a PostgreSQL database, must give the same RFM and
lifecycle stages, the same trained models (on the same features), the same
recommendations, the same resolution verdicts and the same quality report.

The stores differ in everything below the ports (the SQL dialect, JSON types,
how lines are parsed); the domain above them must not be able to tell.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from personable import Engine
from personable.clock import SimulatedClock
from personable.config import write_starter
from personable.simulator import StoreSpec, simulate

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = START + timedelta(days=60)


def _run(project: Path, sim) -> dict:
    out: dict = {}
    with Engine(project, clock=SimulatedClock(NOW)) as engine:
        report = engine.ingest(sim.events_path)
        out["ingest"] = (report.accepted, report.quarantined, report.merges, report.profiles_created)
        crm = engine.ingest(sim.crm_path, kind="crm")
        out["crm"] = (crm.accepted, crm.quarantined, crm.merges)
        out["catalog"] = engine.recommend.import_catalog(sim.catalog_path)["items"]
        out["stats"] = {k: v for k, v in engine.stats().items() if k not in ("schema_version",)}
        out["computed"] = engine.segments.compute()
        out["refresh"] = engine.segments.refresh()
        out["segments"] = {s["segment_id"]: s["size"] for s in engine.segments.list()}
        churn = engine.models.train("churn", horizon_days=15)
        # Not the data hash: sums over floats in another order differ in the last bit.
        out["churn"] = churn["features"]
        metrics = churn.get("metrics", {})
        out["churn_metrics"] = {k: round(v, 2) for k, v in metrics.items() if isinstance(v, float)}
        out["recommend"] = engine.recommend.train()
        users = [r["v"] for r in engine.sql("SELECT value AS v FROM identities WHERE kind = 'user_id' "
                                            "ORDER BY value LIMIT 20").to_pylist()]
        out["lists"] = {u: [i["item_id"] for i in engine.recommend.recommend(u, n=5)["items"]] for u in users}
        out["resolution"] = engine.resolution.run()
        quality = engine.quality.report()
        out["quality"] = {k: quality[k] for k in ("fields", "events") if k in quality}
        out["profiles"] = {u: _comparable(engine.profile(u)) for u in users[:5]}
    return out


def _comparable(doc: dict) -> dict:
    """A profile document without its generated ids (each store mints its own)."""
    return {k: v for k, v in doc.items() if k not in ("profile_id", "merged_from")}


def _strip_times(value):
    """Run times and durations differ between runs; everything else must not."""
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items()
                if not any(w in k for w in ("seconds", "duration", "run_at", "trained_at", "took", "elapsed", "version"))}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


@pytest.mark.services
@pytest.mark.slow
def test_every_job_gives_the_same_results_on_duckdb_and_postgresql(tmp_path, postgres_url, monkeypatch):
    sim = simulate(tmp_path / "sim", StoreSpec(customers=1500, days=60, seed=41))
    # One identity key for both projects: each would make its own, and its documents show the keyed digests.
    monkeypatch.setenv("PERSONABLE_IDENTITY_KEYS", json.dumps([{"id": "k1", "secret": base64.b64encode(
        b"0123456789abcdef0123456789abcdef").decode()}]))
    results = {}
    for name in ("duckdb", "postgres"):
        project = tmp_path / name
        write_starter(project, "jobs")
        if name == "postgres":
            cfg = project / "personable.yaml"
            cfg.write_text(cfg.read_text().replace("offline: duckdb:///.personable/store.duckdb",
                                                   f"offline: {postgres_url}"))
        results[name] = _strip_times(_run(project, sim))
        shutil.rmtree(project / ".personable" / "models", ignore_errors=True)
    duck, pg = results["duckdb"], results["postgres"]
    assert duck["ingest"][0] > 1000 and duck["stats"]["profiles"] > 100   # a real shop, not an empty one
    for key in duck:
        assert pg[key] == duck[key], f"{key} differs:\nduckdb   {duck[key]}\npostgres {pg[key]}"
