"""The CLI as a user runs it, alone and side by side with a running server."""

from __future__ import annotations

import json
import time

from conftest import run_cli, start_server, stop_server

T = "2026-02-01T10:00:00Z"


def test_init_writes_starter(tmp_path):
    proj = tmp_path / "p"
    out = json.loads(run_cli("init", "--json", project=proj).stdout)
    assert (proj / "personable.yaml").exists() and set(out["write_keys"]) == {"web", "server"}
    again = run_cli("init", project=proj, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_help_is_fast_and_lists_commands():
    t = time.perf_counter()
    out = run_cli("--help").stdout
    for cmd in ("init", "serve", "ingest", "profile", "quarantine", "status", "demo"):
        assert cmd in out
    assert time.perf_counter() - t < 30  # sanity only; speed is measured in benchmarks


def test_ingest_profile_quarantine_status(project, tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([
        json.dumps({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "a@b.co"}, "timestamp": T}),
        json.dumps({"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"revenue": 5}, "timestamp": T}),
        "garbage",
    ]) + "\n")
    report = json.loads(run_cli("ingest", str(path), "--json", project=project).stdout)
    assert report["accepted"] == 2 and report["quarantined"] == 1
    prof = json.loads(run_cli("profile", "show", "a1", "--json", project=project).stdout)
    assert prof["computed"]["revenue"] == 5
    human = run_cli("profile", "show", "email:a@b.co", project=project).stdout
    assert prof["profile_id"] in human and "Order Completed" in human
    q = json.loads(run_cli("quarantine", "--json", project=project).stdout)
    assert q[0]["problems"][0]["problem"] == "is not valid JSON"
    stats = json.loads(run_cli("status", "--json", project=project).stdout)
    assert stats["events"] == 2
    missing = run_cli("profile", "show", "nobody", "--json", project=project, check=False)
    assert missing.returncode == 3 and json.loads(missing.stdout)["error"]["code"] == "not_found"
    bad = run_cli("ingest", str(tmp_path / "nope.jsonl"), project=project, check=False)
    assert bad.returncode == 2 and "no such file" in bad.stderr


def test_cli_and_server_side_by_side(project, tmp_path):
    server = start_server(project)
    try:
        import httpx
        path = tmp_path / "side.jsonl"
        path.write_text("\n".join(json.dumps({"type": "track", "userId": f"u{i}", "event": "X", "messageId": f"f{i}",
                                              "timestamp": T}) for i in range(200)) + "\n")
        with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
            for i in range(20):
                assert c.post("/v1/track", json={"userId": f"h{i}", "event": "Y", "timestamp": T}).status_code == 200
            report = json.loads(run_cli("ingest", str(path), "--json", project=project).stdout)
            assert report["accepted"] == 200
            for i in range(20, 40):
                assert c.post("/v1/track", json={"userId": f"h{i}", "event": "Y", "timestamp": T}).status_code == 200
        stats = json.loads(run_cli("status", "--json", project=project).stdout)
        assert stats["events"] == 240
        prof = json.loads(run_cli("profile", "show", "h3", "--json", project=project).stdout)
        assert prof["computed"]["event_count"] == 1
    finally:
        stop_server(server)
    # With the server gone the CLI opens the file itself and finds everything.
    stats = json.loads(run_cli("status", "--json", project=project).stdout)
    assert stats["events"] == 240


def test_demo_small(tmp_path):
    out = json.loads(run_cli("demo", "--customers", "150", "--days", "20", "--json", project=tmp_path / "d").stdout)
    assert out["stats"]["events"] > 1000 and out["known_profiles"] > 0
    assert out["stitching_exact"] > 0.95
    assert out["ingest"]["events"]["quarantined"] == 0
