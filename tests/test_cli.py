"""The CLI as a user runs it, alone and side by side with a running server."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from conftest import run_cli, start_server, stop_server

T = "2026-02-01T10:00:00Z"
MODES = ["local engine", "through a running server"]
SEGMENTS = {"big_spenders": {"rule": {"computed": "revenue", "gt": 100}},
            "uk": {"name": "United Kingdom", "rule": {"trait": "country", "eq": "GB"}}}


def _with_segments(project) -> None:
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    (project / "personable.yaml").write_text(yaml.safe_dump({**raw, "segments": SEGMENTS}, sort_keys=False))


@pytest.fixture(params=MODES)
def mode(request, project):
    """The CLI on its own (it opens the Engine), or beside a server that owns the
    project (it talks to it through personable.client): every command must answer alike."""
    _with_segments(project)
    if request.param == "local engine":
        yield None
        return
    server = start_server(project)
    yield server
    stop_server(server)


def _events(tmp_path, lines) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) if isinstance(e, dict) else e for e in lines) + "\n")
    return str(path)


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


def test_ingest_profile_quarantine_status(project, mode, tmp_path):
    path = _events(tmp_path, [
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "a@b.co"}, "timestamp": T},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"revenue": 5}, "timestamp": T},
        "garbage",
    ])
    report = json.loads(run_cli("ingest", path, "--json", project=project).stdout)
    assert report["origin"] == path
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


def _json(*args, project, code=0):
    out = run_cli(*args, "--json", project=project, check=False)
    assert out.returncode == code, (args, out.returncode, out.stdout, out.stderr)
    return json.loads(out.stdout)


def test_segment_quality_resolution_model_and_recommend_commands(project, mode, tmp_path):
    """The same commands, the same answers, whether the CLI opens the project or a server owns it."""
    path = _events(tmp_path, [
        # UK profiles are exported (for advertising, by default) only with consent (docs/privacy.md).
        {"type": "identify", "userId": "u1", "traits": {"country": "GB", "email": "u1@example.com",
                                                        "consent": {"Advertising": True}}, "timestamp": T},
        {"type": "identify", "userId": "u2", "traits": {"country": "GB", "consent": {"Advertising": True}},
         "timestamp": T},
        {"type": "identify", "userId": "u3", "traits": {"country": "FR"}, "timestamp": T},
        {"type": "track", "userId": "u1", "event": "Order Completed", "timestamp": T,
         "properties": {"order_id": "o1", "revenue": 150}},
    ])
    assert _json("ingest", path, project=project)["accepted"] == 4
    refreshed = _json("segments", "refresh", project=project)
    assert {r["segment_id"] for r in refreshed["segments"]} == set(SEGMENTS)
    listing = {s["segment_id"]: s for s in _json("segments", "list", project=project)}
    assert {k: v["size"] for k, v in listing.items()} == {"big_spenders": 1, "uk": 2}
    uk = _json("segments", "show", "uk", project=project)
    assert uk["name"] == "United Kingdom" and uk["rule"] == SEGMENTS["uk"]["rule"] and uk["size"] == 2
    assert len(_json("segments", "members", "uk", project=project)) == 2
    assert {h["segment_id"] for h in _json("segments", "history", "uk", project=project)} == {"uk"}
    computed = _json("segments", "compute", project=project)
    assert computed["customers_scored"] == 1
    stages = _json("segments", "transitions", "u1", "--key", "lifecycle_stage", project=project)
    assert [t["key"] for t in stages] == ["lifecycle_stage"]
    exported = _json("segments", "export", "uk", str(tmp_path / "uk.csv"), project=project)
    assert exported["members"] == 2 and exported["path"] == str(tmp_path / "uk.csv") and (tmp_path / "uk.csv").exists()
    assert _json("segments", "show", "nope", project=project, code=3)["error"]["code"] == "not_found"

    report = _json("quality", project=project)
    assert report["profiles"] == 3 and "email" in {f["field"] for f in report["fields"]}
    assert [r["id"] for r in _json("quality", "history", project=project)] == [report["id"]]
    bad_field = _json("quality", "--field", "nope", project=project, code=2)
    assert bad_field["error"]["code"] == "validation_failed"

    assert _json("resolve", "review", project=project) == []
    explained = _json("resolve", "explain", "u1", project=project)
    assert explained["links"] == [] and explained["pending_review"] == []
    assert _json("resolve", "undo", "p_nope", project=project, code=3)["error"]["code"] == "not_found"

    assert _json("models", "list", project=project) == []
    unknown = _json("models", "train", "magic", project=project, code=2)
    assert unknown["error"]["code"] == "validation_failed" and "unknown model" in unknown["error"]["message"]
    assert _json("models", "show", "churn", project=project, code=3)["error"]["code"] == "not_found"
    assert _json("recommend", "show", "u1", project=project, code=3)["error"]["code"] == "not_found"
    assert _json("status", project=project)["events"] == 4


def test_as_of_needs_the_projects_own_files(project, server):
    """--as-of cannot be honoured through a server: refused (before, the clock was dropped silently)."""
    out = run_cli("models", "train", "churn", "--as-of", "2026-01-01", "--json", project=project, check=False)
    assert out.returncode == 4 and json.loads(out.stdout)["error"]["code"] == "server_running"


def test_the_client_raises_the_servers_errors_as_their_own_classes(project):
    from personable.client import RemoteEngine
    from personable.config import load_config
    from personable.errors import NotFound, PathNotAllowed, ValidationFailed

    _with_segments(project)
    server = start_server(project)
    remote = RemoteEngine(load_config(project), server.url)
    try:
        with pytest.raises(ValidationFailed) as bad:        # before: a bare PersonableError
            remote.quality.report(["no_such_field"])
        assert bad.value.code == "validation_failed" and bad.value.status == 400
        with pytest.raises(PathNotAllowed) as outside:
            remote.call("POST", "/v1/admin/ingest", json={"path": "/etc/passwd"})
        assert outside.value.details[0].path == "body.path"
        with pytest.raises(ValidationFailed) as typed:
            remote.call("POST", "/v1/admin/ingest", json={"path": "x.jsonl", "kind": 3})
        assert [d.path for d in typed.value.details] == ["body.kind"]
        with pytest.raises(NotFound):
            remote.segments.show("nope")
        # A profile's spells in every segment (segment_id None): before, it asked for segment "None".
        remote.ingest(_events(server.project, [{"type": "identify", "userId": "h1", "traits": {"country": "GB"},
                                                "timestamp": T}]))
        remote.segments.refresh(cause="nightly")
        spells = remote.segments.history(profile="h1")
        assert [(s["segment_id"], s["profile_id"]) for s in spells] == [("uk", remote.profile("h1")["profile_id"])]
    finally:
        remote.close()
        stop_server(server)
