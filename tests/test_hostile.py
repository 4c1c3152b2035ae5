"""Defects found by hostile testing (issue 11, point 7): each test failed before its fix."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import start_server, stop_server
from personable.config import write_starter
from personable.errors import ValidationFailed

T = "2026-02-01T10:00:00Z"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only need some server (starting one costs seconds)."""
    project = tmp_path_factory.mktemp("hostile") / "proj"
    write_starter(project, "hostile-shop")
    s = start_server(project)
    yield s
    stop_server(s)


def nested(depth: int) -> dict:
    """An object ``depth`` levels deep (the event itself is level 1)."""
    node: dict = {}
    for _ in range(depth - 2):
        node = {"x": node}
    return node


def post(server, path, body, headers=None):
    with server.client() as c:
        return c.post(path, content=json.dumps(body).encode(), auth=(server.write_key, ""),
                      headers={"Content-Type": "application/json", **(headers or {})})


def quarantined(server) -> list[dict]:
    with server.client() as c:
        return c.get("/v1/quarantine", headers=server.admin, params={"fresh": "true", "limit": 1000}).json()["items"]


# -- 1. deep nesting, far timestamps, huge query integers -------------------------

def deep_json(depth: int) -> str:
    """JSON text of a value ``depth - 1`` levels deep, built as text (Python's
    json module runs out of recursion before the server's parser does)."""
    return '{"x":' * (depth - 2) + "{}" + "}" * (depth - 2)


def test_deeply_nested_event_is_quarantined_and_the_rest_of_the_batch_lands(server):
    for depth in (255, 600, 1000):
        good = json.dumps({"type": "track", "userId": f"ok-{depth}", "event": "Fine", "timestamp": T})
        deep = '{"type": "track", "userId": "deep", "event": "Deep", "timestamp": "%s", "properties": %s}' % (
            T, deep_json(depth))
        with server.client() as c:
            r = c.post("/v1/batch", content=('{"batch": [%s, %s]}' % (good, deep)).encode(),
                       auth=(server.write_key, ""))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["accepted"] == 1
        assert body["rejected"][0]["index"] == 1
        assert body["rejected"][0]["details"][0]["path"] == "batch[1]"
        assert "nested deeper" in body["rejected"][0]["details"][0]["problem"]
    items = quarantined(server)
    deep_items = [i for i in items if any("nested deeper" in p["problem"] for p in i["problems"])]
    assert len(deep_items) == 3 and all('"userId":"deep"' in i["raw"] for i in deep_items)
    with server.client() as c:
        assert c.get("/v1/profiles/ok-1000", headers=server.admin, params={"fresh": "true"}).status_code == 200
        r = c.post("/v1/track", content=json.dumps({"userId": "d", "event": "X", "timestamp": T,
                                                    "properties": nested(300)}).encode(),
                   auth=(server.write_key, ""))
        assert r.status_code == 400 and "nested deeper" in r.text


@pytest.mark.parametrize("fields, path", [
    ({"timestamp": "0001-01-01T00:30:00+01:00"}, "timestamp"),
    ({"timestamp": "9999-12-31T23:30:00-01:00"}, "timestamp"),
    ({"timestamp": T, "sentAt": "9999-01-01T00:00:00Z"}, "sentAt"),
    ({"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"}, "timestamp"),
])
def test_far_timestamps_are_validation_problems(shared, fields, path):
    server = shared
    event = {"type": "track", "userId": "far", "event": "X", **fields}
    r = post(server, "/v1/track", event)
    assert r.status_code == 400, r.text
    assert path in {d["path"] for d in r.json()["error"]["details"]}
    r = post(server, "/v1/batch", {"batch": [event, {"type": "track", "userId": "near", "event": "X", "timestamp": T}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_batch_envelope_sent_at_is_validated(shared):
    server = shared
    r = post(server, "/v1/batch", {"sentAt": "9999-01-01T00:00:00Z",
                                   "batch": [{"type": "track", "userId": "env", "event": "X", "timestamp": T}]})
    assert r.status_code == 400, r.text
    assert "batch[0].sentAt" in {d["path"] for d in r.json()["error"]["details"]}


def test_python_api_refuses_far_timestamps_and_deep_events(engine):
    with pytest.raises(ValidationFailed) as err:
        engine.track("u", "X", timestamp="0001-01-01T00:30:00+01:00")
    assert err.value.details[0].path == "batch[0].timestamp"
    with pytest.raises(ValidationFailed) as err:
        engine.track("u", "X", properties=nested(400), timestamp=T)
    assert "nested deeper" in err.value.details[0].problem


def test_file_import_quarantines_far_timestamps_and_deep_events(engine, tmp_path):
    lines = [
        {"type": "track", "userId": "f1", "event": "X", "timestamp": "0001-01-01T00:30:00+01:00"},
        {"type": "track", "userId": "f2", "event": "X", "timestamp": T, "sentAt": "9999-01-01T00:00:00Z"},
        {"type": "track", "userId": "f3", "event": "X", "timestamp": T, "properties": nested(500)},
        {"type": "track", "userId": "f4", "event": "X", "timestamp": T},
    ]
    path = tmp_path / "far.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    report = engine.ingest(path)
    assert report.as_dict()["quarantined"] == 3, report.as_dict()
    assert engine.profile("f4")["computed"]["event_count"] == 1


@pytest.mark.parametrize("route, param", [
    ("/v1/quarantine", "limit"), ("/v1/quarantine", "offset"), ("/v1/profiles/x", "events"),
    ("/v1/quality/history", "limit"), ("/v1/resolve/review", "offset"), ("/v1/models/churn", "version"),
    ("/v1/segments/s/members", "offset"), ("/v1/segments/s/history", "limit"),
    ("/v1/recommendations/x", "n"),
])
def test_query_integers_above_int64_are_400_with_the_field(shared, route, param):
    server = shared
    with server.client() as c:
        r = c.get(route, headers=server.admin, params={param: "99999999999999999999"})
    assert r.status_code == 400, r.text
    assert any(d["path"] == f"query.{param}" for d in r.json()["error"]["details"])


# -- 3. the quarantine is written in bulk ------------------------------------------

def test_a_batch_of_14000_invalid_events_all_lands_in_quarantine(shared):
    server = shared
    bad = [{"type": "track", "userId": f"bulk-{i}", "timestamp": T} for i in range(14_000)]  # no `event`
    good = {"type": "track", "userId": "bulk-good", "event": "X", "timestamp": T}
    r = post(server, "/v1/batch", {"batch": [*bad, good]})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and len(r.json()["rejected"]) == 14_000
    with server.client() as c:
        stats = c.get("/v1/stats", headers=server.admin, params={"fresh": "true"}).json()
        newest = c.get("/v1/quarantine", headers=server.admin, params={"limit": 1}).json()["items"][0]
    assert stats["quarantined"] >= 14_000
    assert newest["record_no"] == 13_999 and newest["problems"] == [{"path": "batch[13999].event",
                                                                      "problem": "is required for track events"}]
    assert json.loads(newest["raw"])["userId"] == "bulk-13999"


# -- 7. Engine.sql is read-only --------------------------------------------------

@pytest.mark.parametrize("statement", [
    "DELETE FROM events", "UPDATE events SET user_id = 'x'", "DROP TABLE events", "INSERT INTO quarantine (received_at) VALUES (now())",
    "ATTACH ':memory:' AS other", "COPY events TO '/tmp/personable-hostile-copy.csv'", "SELECT 1; DELETE FROM events",
    "EXPLAIN ANALYZE DELETE FROM events", "CREATE TABLE x AS SELECT 1", "SET threads = 1", "CHECKPOINT",
])
def test_engine_sql_refuses_statements_that_change_anything(engine, statement):
    from personable.errors import ReadOnlyQuery

    engine.track("ro-user", "X", timestamp=T)
    with pytest.raises(ReadOnlyQuery):
        engine.sql(statement)
    assert engine.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 1}]
    assert engine.sql("SELECT value FROM identities WHERE kind = 'user_id'").column(0).to_pylist() == ["ro-user"]


def test_engine_sql_still_answers_queries(engine):
    engine.track("ro-user", "X", timestamp=T)
    for query in ("SELECT count(*) FROM events", "WITH e AS (SELECT * FROM events) SELECT count(*) FROM e",
                  "FROM events SELECT count(*)", "DESCRIBE events", "SHOW TABLES", "EXPLAIN SELECT 1",
                  "SUMMARIZE events"):
        assert engine.sql(query).num_rows >= 1
    assert engine.sql("SELECT ? AS v", [5]).to_pylist() == [{"v": 5}]


# -- 5. HTTP robustness ------------------------------------------------------------

def test_unknown_content_encoding_is_415(shared):
    body = json.dumps({"userId": "enc", "event": "X", "timestamp": T}).encode()
    r = post_raw(shared, "/v1/track", body, {"Content-Encoding": "br"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_encoding"


def test_truncated_gzip_is_400(shared):
    import gzip

    whole = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "gz", "event": "X", "timestamp": T}]
                                      * 50}).encode())
    r = post_raw(shared, "/v1/batch", whole[: len(whole) // 2], {"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "truncated" in r.json()["error"]["message"]
    assert post_raw(shared, "/v1/batch", whole, {"Content-Encoding": "gzip"}).status_code == 200


def post_raw(server, path, body: bytes, headers: dict) -> httpx.Response:
    with server.client() as c:
        return c.post(path, content=body, auth=(server.write_key, ""),
                      headers={"Content-Type": "application/json", **headers})


def test_an_idle_kept_alive_connection_is_closed(shared):
    import socket

    with socket.create_connection(("127.0.0.1", shared.port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        # Read the whole response (headers and body may arrive in separate reads), then wait.
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += s.recv(65536)
        assert s.recv(65536) == b""  # the server hung up on the idle connection (it used to wait forever)


# -- 7. a stale server marker does not lock the CLI out ------------------------------

def test_stale_marker_naming_a_live_unrelated_pid_is_ignored(project):
    import os

    from conftest import run_cli

    marker = project / ".personable" / "server.json"
    # Our own pid is alive and is not a personable server; port 9 answers nothing.
    marker.write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9"}))
    out = run_cli("status", "--json", project=project)
    assert out.returncode == 0
    marker.write_text(json.dumps({"pid": os.getpid(), "started": "1", "url": "http://127.0.0.1:9"}))
    assert run_cli("status", "--json", project=project).returncode == 0


def test_a_live_server_is_still_found_through_its_marker(server):
    from personable.config import load_config
    from personable.server.run import running_server

    info = running_server(load_config(server.project))
    assert info is not None and info["pid"] == server.proc.pid and info["started"]


# -- 2. no non-finite aggregates -----------------------------------------------------

def test_huge_revenue_is_a_validation_problem_over_http(shared):
    server = shared
    order = {"userId": "rich", "event": "Order Completed", "timestamp": T,
             "properties": {"order_id": "o1", "revenue": 1.7e308}}
    r = post(server, "/v1/track", order)
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["path"] == "properties.revenue"
    ok = {**order, "properties": {"order_id": "o2", "revenue": 12.5}}
    assert post(server, "/v1/track", ok).status_code == 200
    with server.client() as c:
        prof = c.get("/v1/profiles/rich", headers=server.admin, params={"fresh": "true"})
    assert prof.status_code == 200 and prof.json()["computed"]["revenue"] == 12.5


def test_huge_revenue_is_refused_by_the_python_api_and_quarantined_from_files(engine, tmp_path):
    for bad in (1.7e308, float("inf"), float("nan"), -1e16):
        with pytest.raises(ValidationFailed) as err:
            engine.track("rich", "Order Completed", {"order_id": "o1", "revenue": bad}, timestamp=T)
        assert err.value.details[0].path == "batch[0].properties.revenue"
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(json.dumps({"type": "track", "userId": "rich", "event": "Order Completed",
                                          "timestamp": T, "properties": {"order_id": f"o{i}", "revenue": 1.7e308}})
                              for i in range(2)) + "\n" + json.dumps(
        {"type": "track", "userId": "rich", "event": "Order Completed", "timestamp": T,
         "properties": {"order_id": "o3", "revenue": 5}}) + "\n")
    assert engine.ingest(path).as_dict()["quarantined"] == 2
    assert engine.profile("rich")["computed"]["revenue"] == 5


def test_a_non_finite_stored_aggregate_never_reaches_a_document(engine):
    engine.track("inf", "Order Completed", {"order_id": "o1", "revenue": 5}, timestamp=T)
    # A revenue made infinite by something other than one event (e.g. a huge
    # currency rate): the document says null instead of breaking every read.
    engine.store.cursor().execute("UPDATE profiles SET revenue = 'inf'::DOUBLE")
    engine.refresh_online()
    engine.track("inf", "X", timestamp=T)
    assert engine.profile("inf")["computed"]["revenue"] is None


# -- 4. the server's file access is confined -----------------------------------------

def test_admin_routes_cannot_read_or_write_outside_their_folders(server, tmp_path):
    other = tmp_path / "other-project-keys.json"
    other.write_text('{"admin_token": "secret-of-another-project"}\n')
    outside = tmp_path / "victim.txt"
    outside.write_text("precious\n")
    (server.project / "imports").mkdir(exist_ok=True)
    (server.project / "imports" / "link.jsonl").symlink_to("/etc/passwd")
    with server.client() as c:
        for path in ("/etc/passwd", str(other), "../.personable/keys.json", "link.jsonl",
                     str(server.project / "imports" / ".." / ".personable" / "keys.json")):
            r = c.post("/v1/admin/ingest", json={"path": path}, headers=server.admin)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"]["code"] == "path_not_allowed"
        r = c.post("/v1/admin/items/import", json={"path": "/etc/passwd"}, headers=server.admin)
        assert r.status_code == 403
        r = c.post("/v1/admin/segments", headers=server.admin,
                   json={"segment_id": "all", "name": "All", "rule": "event_count >= 0"})
        r = c.post("/v1/admin/segments/all/export", json={"path": str(outside)}, headers=server.admin)
        assert r.status_code == 403 and r.json()["error"]["code"] == "path_not_allowed"
        quarantine = c.get("/v1/quarantine", headers=server.admin, params={"limit": 1000}).json()["items"]
    assert outside.read_text() == "precious\n"
    assert not any("root:" in i["raw"] or "secret-of-another" in i["raw"] for i in quarantine)


def test_files_inside_the_import_folder_import_and_the_cli_is_not_confined(server, tmp_path):
    from conftest import run_cli

    line = json.dumps({"type": "track", "userId": "inside", "event": "X", "timestamp": T}) + "\n"
    (server.project / "imports").mkdir(exist_ok=True)
    (server.project / "imports" / "in.jsonl").write_text(line)
    with server.client() as c:
        r = c.post("/v1/admin/ingest", json={"path": "in.jsonl"}, headers=server.admin)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    # The CLI (here talking to the server) still imports the user's own file from anywhere.
    mine = tmp_path / "mine.jsonl"
    mine.write_text(line.replace("inside", "mine"))
    report = json.loads(run_cli("ingest", str(mine), "--json", project=server.project).stdout)
    assert report["accepted"] == 1 and report["origin"] == str(mine)
    assert not [p for p in (server.project / "imports").iterdir() if p.name.startswith(".cli-")]


# -- 7. CRM imports as documented ------------------------------------------------------

def _crm_mapping(project, mapping: dict, fields: dict | None = None) -> None:
    import yaml

    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["imports"]["crm"] = mapping
    raw["quality"].setdefault("fields", {}).update(fields or {})
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_crm_file_with_neither_user_id_nor_email_imports(project, tmp_path):
    from personable import Engine

    _crm_mapping(project, {"phone": "phone", "first_name": "first_name"})
    path = tmp_path / "phones.csv"
    path.write_text("phone,first_name\n+44 20 7946 0018,Ann\n+1 415 555 0199,Bob\n")
    with Engine(project) as engine:
        report = engine.ingest(path, kind="crm")
        assert report.accepted == 2 and report.quarantined == 0
        assert engine.profile("phone:+442079460018")["traits"]["first_name"] == "Ann"


def test_one_unreadable_trait_is_flagged_and_the_record_kept_by_default(project, tmp_path):
    from personable import Engine

    _crm_mapping(project, {"user_id": "customer_id", "email": "email", "first_name": "first_name",
                           "timestamp": "updated_at"}, {"birth_date": {"standardize": "date"}})
    path = tmp_path / "crm.csv"
    path.write_text("customer_id,email,first_name,birth_date,updated_at\n"
                    "c1,ann@example.com,Ann,the day after tomorrow,2026-01-05T00:00:00Z\n")
    with Engine(project) as engine:
        report = engine.ingest(path, kind="crm")
        assert report.accepted == 1 and report.quarantined == 0
        ann = engine.profile("c1")
        assert ann["traits"]["email"] == "ann@example.com" and ann["traits"]["first_name"] == "Ann"
        assert ann["trait_sources"]["birth_date"]["origin"] == "invalid"
        assert engine.profile("email:ann@example.com")["profile_id"] == ann["profile_id"]
