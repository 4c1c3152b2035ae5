"""The OpenAPI description is what clients are built from, so it is tested two ways
against a real server on 127.0.0.1 (a demo project: every route has data):

- a real generator (openapi-python-client) builds a client from the live
  /openapi.json, and that client, imported, calls routes and parses the answers;
- a tour of every admin and read route checks each answer (successes and errors)
  against the response schema the description declares for its status.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from conftest import start_server, stop_server

pytest.importorskip("openapi_python_client")
T = "2026-02-01T10:00:00Z"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from personable.demo import run_demo

    project = tmp_path_factory.mktemp("openapi") / "demo"
    summary = run_demo(project, customers=300, days=40, quiet=True)   # long enough to train clv
    server = start_server(project)
    server.summary = summary
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def spec(demo):
    return httpx.get(f"{demo.url}/openapi.json", timeout=30).json()


def _someone(demo) -> str:
    return demo.summary["top_customers"][0]["profile_id"]


def _generate(spec: dict, into: Path) -> None:
    (into / "openapi.json").write_text(json.dumps(spec))
    bin_dir = str(Path(sys.executable).parent)   # its ruff pass, from the same environment
    proc = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path",
                           str(into / "openapi.json"), "--meta", "none", "--output-path",
                           str(into / "personable_client")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every operation became a module: nothing was skipped for an unreadable schema.
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_a_generated_client_works_against_the_server(demo, spec, tmp_path, monkeypatch):
    _generate(spec, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        pc = importlib.import_module("personable_client")
        api = importlib.import_module("personable_client.api")
        profiles = importlib.import_module("personable_client.api.profiles.get_profile")
        segments = importlib.import_module("personable_client.api.segments")
        ingest = importlib.import_module("personable_client.api.ingest")
        collect = importlib.import_module("personable_client.api.collect.collect_track")
        models = importlib.import_module("personable_client.models")
        for name in ("list_segments", "put_segment", "show_segment"):
            importlib.import_module(f"{segments.__name__}.{name}")
        importlib.import_module(f"{ingest.__name__}.get_stats")
        assert api
        admin = pc.AuthenticatedClient(base_url=demo.url, token=demo.admin["Authorization"].split()[1], timeout=60)
        basic = base64.b64encode(f"{demo.write_key}:".encode()).decode()
        writer = pc.Client(base_url=demo.url, timeout=60).with_headers({"Authorization": f"Basic {basic}"})

        sent = collect.sync_detailed(client=writer, body=models.CollectTrackBody.from_dict(
            {"userId": "gen-1", "event": "Generated", "timestamp": T}))
        assert sent.status_code == 200 and sent.parsed.success and sent.parsed.accepted == 1

        doc = profiles.sync_detailed(client=admin, identifier="gen-1", fresh=True)
        assert doc.status_code == 200, doc.content
        assert doc.parsed.computed["event_count"] == 1
        assert doc.parsed.recent_events[0]["event"] == "Generated"

        someone = profiles.sync(client=admin, identifier=_someone(demo))
        assert someone.profile_id == _someone(demo) and someone.identities

        stats = sys.modules[f"{ingest.__name__}.get_stats"].sync(client=admin, fresh=True)
        assert stats.events > 1000 and stats.profiles > 100

        put = sys.modules[f"{segments.__name__}.put_segment"]
        made = put.sync_detailed(client=admin, segment_id="generated",
                                 body=models.SegmentDefinition.from_dict({"rule": {"computed": "event_count",
                                                                                   "gte": 1}}))
        assert made.status_code == 200 and made.parsed.segment_id == "generated" and made.parsed.size > 0
        listed = sys.modules[f"{segments.__name__}.list_segments"].sync(client=admin)
        assert "generated" in {s.segment_id for s in listed.items}

        # Errors come back parsed, in the project's shape, with their field paths.
        missing = profiles.sync_detailed(client=admin, identifier="nobody-at-all")
        assert missing.status_code == 404 and missing.parsed.error.code == "not_found"
        bad = put.sync_detailed(client=admin, segment_id="broken",
                                body=models.SegmentDefinition.from_dict({"rule": {"trait": "a"}}))
        assert bad.status_code == 400 and bad.parsed.error.details[0].path == "segment.rule"
        stranger = profiles.sync_detailed(client=pc.Client(base_url=demo.url), identifier="gen-1")
        assert stranger.status_code == 401 and stranger.parsed.error.code == "unauthorized"
    finally:
        for name in [m for m in sys.modules if m == "personable_client" or m.startswith("personable_client.")]:
            del sys.modules[name]


def _tour(demo) -> list[tuple[str, str, dict, int]]:
    """(method, path, request keywords, expected status): every admin and read route."""
    who = _someone(demo)
    imports = demo.project / "imports"
    imports.mkdir(exist_ok=True)
    (imports / "tour.jsonl").write_text(json.dumps({"type": "track", "userId": "tour", "event": "X",
                                                    "timestamp": T}) + "\nnot json\n")
    return [
        ("GET", "/healthz", {}, 200),
        ("GET", "/v1/stats", {"params": {"fresh": "true"}}, 200),
        ("POST", "/v1/admin/ingest", {"json": {"path": "tour.jsonl"}}, 200),
        ("POST", "/v1/admin/ingest", {"json": {"path": "/etc/passwd"}}, 403),
        ("POST", "/v1/admin/ingest", {"json": {"path": "tour.jsonl", "kind": "people"}}, 400),
        ("GET", "/v1/quarantine", {"params": {"fresh": "true"}}, 200),
        ("GET", f"/v1/profiles/{who}", {}, 200),
        ("GET", "/v1/profiles/nobody", {}, 404),
        ("GET", f"/v1/profiles/{who}/history", {}, 200),
        ("GET", f"/v1/profiles/{who}/transitions", {}, 200),
        ("GET", "/v1/segments", {}, 200),
        ("PUT", "/v1/segments/tour", {"json": {"name": "Tour", "rule": {"computed": "event_count", "gt": 3}}}, 200),
        ("PUT", "/v1/segments/tour2", {"json": {"rule": {"trait": "a"}}}, 400),
        ("GET", "/v1/segments/tour", {}, 200),
        ("GET", "/v1/segments/tour/members", {"params": {"limit": 2}}, 200),
        ("GET", "/v1/segments/tour/history", {"params": {"limit": 2}}, 200),
        ("GET", "/v1/memberships", {"params": {"profile": who}}, 200),
        ("POST", "/v1/admin/segments/refresh", {"params": {"segment": "tour"}}, 200),
        ("POST", "/v1/admin/segments/tour/export", {"json": {"path": "tour.csv"}}, 200),
        ("POST", "/v1/admin/segments/compute", {}, 200),
        ("POST", "/v1/admin/segments/cluster", {"json": {"stability_boots": 1}}, 200),
        ("POST", "/v1/admin/segments/cluster", {"json": {"n_clusters": 1}}, 400),
        ("GET", "/v1/segments/clusters/model", {}, 200),
        ("DELETE", "/v1/segments/tour", {}, 200),
        ("GET", "/v1/quality", {}, 200),
        ("GET", "/v1/quality/history", {"params": {"limit": 2}}, 200),
        ("POST", "/v1/admin/quality/clean", {}, 200),
        ("POST", "/v1/admin/quality/impute", {}, 200),
        ("POST", "/v1/admin/resolve", {}, 200),
        ("GET", "/v1/resolve/review", {"params": {"status": "all"}}, 200),
        ("POST", "/v1/resolve/review/decision", {"json": {"left": "x", "right": "y", "decision": "maybe"}}, 400),
        ("GET", f"/v1/resolve/explain/{who}", {}, 200),
        ("POST", "/v1/resolve/undo", {"json": {"profile": "p_nope"}}, 404),
        ("GET", "/v1/models", {}, 200),
        ("POST", "/v1/admin/models/send_time/train", {"json": {"horizon_days": 15}}, 200),
        ("POST", "/v1/admin/models/send_time/train", {"json": {"horizon_days": "soon"}}, 400),
        ("GET", "/v1/models/send_time", {}, 200),
        ("POST", "/v1/admin/models/send_time/score", {}, 200),
        ("POST", "/v1/admin/models/clv/evaluate", {}, 200),
        ("GET", "/v1/models/clv/drift", {}, 200),
        ("POST", "/v1/admin/models/maintain", {}, 200),
        ("GET", f"/v1/recommendations/{who}", {"params": {"n": 3, "viewed": "sku-00001"}}, 200),
        ("GET", f"/v1/recommendations/{who}", {"params": {"n": 0}}, 400),
        ("POST", "/v1/admin/recommend/evaluate", {"json": {"k": 5}}, 200),
        ("POST", "/v1/admin/items/import", {"json": {"path": "/etc/passwd"}}, 403),
    ]


def _operation(spec: dict, method: str, path: str) -> dict:
    for template, operations in spec["paths"].items():
        parts, given = template.strip("/").split("/"), path.strip("/").split("/")
        if len(parts) == len(given) and all(p == g or p.startswith("{") for p, g in zip(parts, given)) \
                and method.lower() in operations:
            exact = sum(p == g for p, g in zip(parts, given))
            yield exact, operations[method.lower()]


def test_every_answer_of_a_route_tour_matches_the_declared_schema(demo, spec):
    problems = []
    with httpx.Client(base_url=demo.url, headers=demo.admin, timeout=300) as http:
        for method, path, kw, status in _tour(demo):
            r = http.request(method, path, **kw)
            if r.status_code != status:
                problems.append(f"{method} {path}: {r.status_code}, expected {status}: {r.text[:300]}")
                continue
            _, operation = max(_operation(spec, method, path), key=lambda found: found[0])
            declared = operation["responses"].get(str(status))
            if declared is None or "application/json" not in declared.get("content", {}):
                problems.append(f"{method} {path}: no schema declared for {status}")
                continue
            schema = {**declared["content"]["application/json"]["schema"], "components": spec["components"]}
            for error in Draft202012Validator(schema).iter_errors(r.json()):
                problems.append(f"{method} {path} ({status}) at {'/'.join(map(str, error.absolute_path))}: "
                                f"{error.message[:200]}")
    assert not problems, "\n".join(problems)


def test_every_admin_route_declares_the_bearer_scheme_and_400_not_422(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if operation.get("tags") == ["oauth"]:       # authenticates with the client's own credentials
                assert {"200", "400", "401"} <= set(operation["responses"]), (method, path)
            elif path.startswith("/v1/") and operation.get("tags") != ["collect"]:
                assert operation.get("security") == [{"admin_token": []}], (method, path)
                assert {"200", "400", "401", "403"} <= set(operation["responses"]), (method, path)
