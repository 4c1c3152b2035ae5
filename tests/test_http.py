"""The real server on 127.0.0.1: collection, auth, bad input, profiles, OpenAPI."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T = "2026-02-01T10:00:00Z"


def post(server, path, body, key=None, raw=False, headers=None):
    with server.client() as c:
        content = body if raw else json.dumps(body).encode()
        return c.post(path, content=content, auth=(key if key is not None else server.write_key, ""),
                      headers={"Content-Type": "application/json", **(headers or {})})


def error(resp):
    body = resp.json()["error"]
    assert set(body) >= {"code", "message", "details"}
    return body


def test_every_call_type_and_batch(server):
    calls = {
        "identify": {"userId": "u1", "anonymousId": "a1", "traits": {"email": "u1@example.com"}},
        "track": {"userId": "u1", "event": "Product Viewed", "properties": {"product_id": "p", "price": 3}},
        "page": {"anonymousId": "a1", "name": "Home"},
        "screen": {"userId": "u1", "name": "Cart"},
        "group": {"userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
        "alias": {"userId": "u1", "previousId": "old-u1"},
    }
    for kind, body in calls.items():
        r = post(server, f"/v1/{kind}", {**body, "timestamp": T})
        assert r.status_code == 200, r.text
        assert r.json()["success"] is True
    r = post(server, "/v1/batch", {"batch": [{"type": "track", "userId": "u1", "event": "X", "timestamp": T},
                                             {"type": "page", "anonymousId": "a1", "name": "P", "timestamp": T}]})
    assert r.json() == {"success": True, "accepted": 2}
    with server.client() as c:
        prof = c.get("/v1/profiles/old-u1", headers=server.admin, params={"fresh": "true"}).json()
        assert prof["computed"]["event_count"] == 8
        stats = c.get("/v1/stats", headers=server.admin).json()
        assert stats["events"] == 8 and stats["profiles"] == 1


def test_auth_errors(server):
    r = post(server, "/v1/track", {"userId": "u", "event": "X"}, key="wrong")
    assert r.status_code == 401 and error(r)["code"] == "unauthorized"
    with server.client() as c:
        r = c.post("/v1/track", json={"userId": "u", "event": "X"})
        assert r.status_code == 401 and "write key" in error(r)["message"]
        assert c.get("/v1/profiles/u").status_code == 401
        # The write key in the batch body is accepted, as Segment does.
        r = c.post("/v1/batch", json={"writeKey": server.write_key, "batch": [{"type": "track", "userId": "u", "event": "X", "timestamp": T}]})
        assert r.status_code == 200


def test_bad_input_gets_clear_4xx_and_nothing_is_lost(server):
    assert post(server, "/v1/track", {"userId": "keep", "event": "Kept", "messageId": "keep-1", "timestamp": T}).status_code == 200
    cases = [
        (b"{not json", 400, "malformed_body", "$"),
        (b'{"userId": "u\xff", "event": "X"}', 400, "malformed_body", "$"),
        (json.dumps({"userId": {"a": 1}, "event": "X"}).encode(), 400, "validation_failed", "userId"),
        (json.dumps({"event": "X"}).encode(), 400, "validation_failed", "userId"),
        (json.dumps({"userId": "u", "event": "X", "timestamp": "2099-01-01T00:00:00Z"}).encode(), 400, "validation_failed", "timestamp"),
        (json.dumps({"userId": "u", "event": "X", "properties": "nope"}).encode(), 400, "validation_failed", "properties"),
        (json.dumps({"userId": "u"}).encode(), 400, "validation_failed", "event"),
        (b"[1,2]", 400, "validation_failed", "$"),
        (b"", 400, "malformed_body", None),
    ]
    for body, status, code, path in cases:
        r = post(server, "/v1/track", body, raw=True)
        assert r.status_code == status, (body, r.text)
        err = error(r)
        assert err["code"] == code, (body, err)
        if path:
            assert path in [d["path"] for d in err["details"]], (body, err)
    r = post(server, "/v1/batch", {"batch": [{"type": "launch", "userId": "u"}]})
    assert r.status_code == 400 and error(r)["details"][0]["path"] == "batch[0].type"
    r = post(server, "/v1/launch", {"userId": "u"})
    assert r.status_code == 404 and "unknown call type" in error(r)["message"]
    big = json.dumps({"userId": "u", "event": "X", "properties": {"blob": "x" * 5_100_000}}).encode()
    r = post(server, "/v1/track", big, raw=True)
    assert r.status_code == 413 and error(r)["code"] == "payload_too_large"
    # A partly bad batch: the good event is stored, the bad one quarantined and named.
    r = post(server, "/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "Fine", "timestamp": T},
                                             {"type": "track", "userId": "u", "timestamp": T}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert r.json()["rejected"][0]["details"][0]["path"] == "batch[1].event"
    with server.client() as c:
        assert c.get("/healthz").status_code == 200  # still serving
        prof = c.get("/v1/profiles/keep", headers=server.admin, params={"fresh": "true"}).json()
        assert [e["messageId"] for e in prof["recent_events"]] == ["keep-1"]
        q = c.get("/v1/quarantine", headers=server.admin).json()["items"]
        assert any(p["path"] == "event" for item in q for p in item["problems"])


def test_gzip_bodies(server):
    body = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "gz", "event": "X", "timestamp": T}]}).encode())
    r = post(server, "/v1/batch", body, raw=True, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200


def test_healthz_and_openapi(server):
    with server.client() as c:
        assert c.get("/healthz").json()["status"] == "ok"
        spec = c.get("/openapi.json").json()
        for path in ("/v1/track", "/v1/identify", "/v1/batch", "/v1/profiles/{identifier}", "/healthz"):
            assert path in spec["paths"]
        track = spec["paths"]["/v1/track"]["post"]
        assert "event" in track["requestBody"]["content"]["application/json"]["schema"]["properties"]
        assert "400" in track["responses"]


payloads = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**62, max_value=2**62) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "userId", "anonymousId", "event", "properties", "traits", "timestamp", "batch",
                         "context", "previousId", "sentAt", "messageId"]) | st.text(max_size=6), inner, max_size=5),
    max_leaves=15)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "batch"]), payloads | st.binary(max_size=64))
def test_random_payloads_never_5xx(server, kind, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post(f"/v1/{kind}", content=body, auth=(server.write_key, ""))
    assert r.status_code < 500, r.text


def test_body_limit_is_configurable(project):
    from conftest import start_server, stop_server

    cfg = project / "personable.yaml"
    cfg.write_text(cfg.read_text().replace("max_body_bytes: 5000000", "max_body_bytes: 2048"))
    server = start_server(project)
    try:
        small = {"userId": "u", "event": "X", "properties": {"blob": "x" * 1000}, "timestamp": T}
        large = {"userId": "u", "event": "X", "properties": {"blob": "x" * 3000}, "timestamp": T}
        assert post(server, "/v1/track", small).status_code == 200
        r = post(server, "/v1/track", large)
        assert r.status_code == 413 and "2048" in error(r)["message"]
    finally:
        stop_server(server)


def test_a_retried_batch_without_message_ids_is_stored_once(server):
    """A client that sends no messageId and retries (a new sentAt, the same events)
    must not double-count: before, each attempt got a random id."""
    events = [{"type": "track", "userId": "retry", "event": "Product Viewed", "properties": {"product_id": f"p{i}"},
               "timestamp": T} for i in range(3)]
    for attempt in range(2):
        sent = post(server, "/v1/batch", {"batch": events, "sentAt": f"2026-02-01T10:00:0{attempt + 1}Z"})
        assert sent.status_code == 200
    with server.client() as c:
        prof = c.get("/v1/profiles/retry", headers=server.admin, params={"fresh": "true"}).json()
    assert prof["computed"]["event_count"] == 3
    assert all(e["messageId"].startswith("auto-") for e in prof["recent_events"])


ADMIN_BODIES = [   # (method, path, body, the field path named); before, the first two answered 500
    ("POST", "/v1/admin/segments/cluster", {"stability_boots": "five"}, "body.stability_boots"),
    ("POST", "/v1/admin/segments/cluster", {"features": 3}, "body.features"),
    ("POST", "/v1/admin/segments/cluster", {"n_clusters": 1}, "body.n_clusters"),
    ("POST", "/v1/admin/recommend/evaluate", {"split": ["temporal"]}, "body.split"),
    ("POST", "/v1/resolve/review/decision", {"left": "a", "right": "b", "decision": "accept", "actor": 7}, "body.actor"),
    ("POST", "/v1/admin/models/clv/train", {"horizon_days": True}, "body.horizon_days"),
    ("POST", "/v1/admin/models/clv/train", {"horizon": 7}, "body.horizon"),
    ("POST", "/v1/admin/ingest", {"path": "x.jsonl", "mapping": {"email": 1}}, "body.mapping.email"),
    ("POST", "/v1/admin/ingest", {"path": "x.jsonl", "chunk_size": 0}, "body.chunk_size"),
    ("POST", "/v1/admin/segments/all/export", {"format": "xlsx", "path": "a.xlsx"}, "body.format"),
    ("PUT", "/v1/segments/s", {"name": "S"}, "body.rule"),
    ("POST", "/v1/admin/items/import", [], "body"),
]


def test_bad_admin_bodies_are_400_naming_the_field(server):
    with server.client() as c:
        for method, path, body, field in ADMIN_BODIES:
            r = c.request(method, path, json=body, headers=server.admin)
            assert r.status_code == 400, (path, body, r.text)
            assert error(r)["code"] == "validation_failed" and field in [d["path"] for d in error(r)["details"]], \
                (path, body, r.text)
        # Not JSON at all: malformed_body, as on the collection routes; a stranger's body is not even read.
        r = c.post("/v1/resolve/undo", content=b"{nope", headers=server.admin)
        assert r.status_code == 400 and error(r)["code"] == "malformed_body"
        r = c.post("/v1/resolve/undo", content=b"{nope")
        assert r.status_code == 401
        # curl -d sends a form Content-Type: a JSON body is still read as JSON.
        r = c.post("/v1/resolve/undo", content=json.dumps({"profile": "p_nope"}).encode(),
                   headers={**server.admin, "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 404, r.text
        r = c.post("/v1/resolve/undo", content=gzip.compress(json.dumps({"profile": "p_nope"}).encode()),
                   headers={**server.admin, "Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status_code == 404, r.text
        r = c.put("/v1/segments/s", content=json.dumps({"rule": "x" * 1_100_000}).encode(), headers=server.admin)
        assert r.status_code == 413 and error(r)["code"] == "payload_too_large"


ADMIN_BODY_ROUTES = [("PUT", "/v1/segments/fuzz"), ("POST", "/v1/admin/segments/cluster"),
                     ("POST", "/v1/admin/models/clv/train"), ("POST", "/v1/resolve/review/decision"),
                     ("POST", "/v1/resolve/undo"), ("POST", "/v1/admin/recommend/evaluate"),
                     ("POST", "/v1/admin/ingest"), ("POST", "/v1/admin/items/import"),
                     ("POST", "/v1/admin/segments/fuzz/export")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(ADMIN_BODY_ROUTES), payloads | st.binary(max_size=64))
def test_random_admin_bodies_never_5xx(server, route, payload):
    method, path = route
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.request(method, path, content=body, headers=server.admin)
    assert r.status_code < 500, r.text


def test_batch_events_are_judged_and_stored_one_by_one_from_their_bytes(server):
    """/v1/batch cuts the body into its events' bytes (events/raw_events.py) and
    stores a valid event as sent: pretty-printed JSON, non-ASCII text, the
    envelope's sentAt and a bad event among good ones must all come out right."""
    now = datetime.now(timezone.utc)
    ahead = now + timedelta(days=30)
    events = [
        {"type": "track", "userId": "bytes-1", "event": "Product Viewed", "messageId": "bytes-m1",
         "properties": {"product_id": "p1", "price": 3, "name": "Crème brûlée 🍮"}, "timestamp": _iso(ahead)},
        {"type": "track", "userId": 7.5, "event": "X", "messageId": "bytes-m2", "timestamp": T},   # refused
        {"type": "identify", "userId": "bytes-1", "traits": {"city": "Zürich"}, "timestamp": T},      # no messageId
    ]
    # The envelope's sentAt is 30 days ahead of the server's clock, as the first event's
    # timestamp: the client's clock is wrong, and with the envelope's sentAt applied the
    # event is stored at about now, not refused as 30 days in the future.
    body = json.dumps({"batch": events, "sentAt": _iso(ahead + timedelta(seconds=5))}, indent=2,
                      ensure_ascii=False).encode()
    assert b"\n" in body
    r = post(server, "/v1/batch", body, raw=True)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert [(x["index"], [d["path"] for d in x["details"]]) for x in r.json()["rejected"]] == [(1, ["batch[1].userId"])]
    with server.client() as c:
        prof = c.get("/v1/profiles/bytes-1", headers=server.admin, params={"fresh": "true"}).json()
    assert prof["traits"]["city"] == "Zürich"
    viewed = next(e for e in prof["recent_events"] if e["messageId"] == "bytes-m1")
    assert viewed["properties"]["name"] == "Crème brûlée 🍮"
    assert abs(datetime.fromisoformat(viewed["timestamp"]) - now) < timedelta(hours=1)
    identify = next(e for e in prof["recent_events"] if e["type"] == "identify")
    assert identify["messageId"].startswith("auto-")


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_batches_the_request_parser_refuses_are_still_400(server):
    """What the whole-body parse refused before the batch was cut into events is refused still."""
    good = b'{"type":"track","userId":"u","event":"X","messageId":"m-refused"'
    for event in (good + b',"properties":{"v":1e999}}', good + b',"name":"\xff"}', good + b',"name":"\\ud800"}'):
        r = post(server, "/v1/batch", b'{"batch":[' + event + b']}', raw=True)
        assert r.status_code == 400 and error(r)["code"] == "malformed_body", (event, r.text)
