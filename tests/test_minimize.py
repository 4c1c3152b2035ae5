"""Data minimization at collection (issue: privacy and security, point 2):
fields are cut down per source before anything keeps them -- the IP to its
network, the user agent to a device class, a field dropped -- on the HTTP
path (before the event log), in file imports and through the Python API, on
both offline stores, quarantined records included."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import OFFLINE_STORES, project_on, start_server, stop_server
from personable import Engine
from personable.adapters.filelog import FollowedLog
from personable.adapters.registry import log_cipher
from personable.privacy.config import MinimizeRule
from personable.privacy.minimize import Minimizer, device_class, ip_prefix

T = "2026-11-01T10:00:00Z"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
RULES = [{"field": "context.ip", "keep": "ip_prefix"},
         {"field": "context.userAgent", "keep": "device_class"},
         {"field": "properties.query", "source": "web"},
         {"field": "traits.postcode", "keep": "truncate", "length": 3}]


def test_what_each_rule_keeps():
    assert ip_prefix("203.0.113.77", 24, 48) == "203.0.113.0"
    assert ip_prefix("2001:db8:abcd:12::1", 24, 48) == "2001:db8:abcd::"
    assert ip_prefix("10.1.2.3", 16, 48) == "10.1.0.0" and ip_prefix("not an ip", 24, 48) is None
    # The class is the device the whole agent yields (parse and SQL alike), or bot.
    assert [device_class(ua) for ua in (IPHONE, "Mozilla/5.0 (iPad; CPU OS 16_0)", "Googlebot/2.1",
                                        "Mozilla/5.0 (Linux; Android 13; SM-X200)",
                                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "mobile", "tablet")] == [
        "mobile", "tablet", "bot", "mobile", "desktop", "mobile", "tablet"]
    # Only an agent's first 512 characters are read (plain alternations over a bounded prefix): one built
    # to make a backtracking pattern slow costs no more than any other.
    assert device_class("x" * 600 + "iPhone") == "desktop" and device_class("android" * 200_000) == "mobile"
    m = Minimizer(MinimizeRule.model_validate(r) for r in RULES)
    event = {"type": "track", "context": {"ip": "203.0.113.77", "userAgent": IPHONE},
             "properties": {"query": "night pharmacy", "page": 2}, "traits": {"postcode": "SW1A 1AA"}}
    once = m.line(json.dumps(event), "web")
    assert json.loads(once) == {"type": "track", "context": {"ip": "203.0.113.0", "userAgent": "mobile"},
                                "properties": {"page": 2}, "traits": {"postcode": "SW1"}}
    assert m.line(once, "web") == once                                # minimizing twice changes nothing
    assert "night pharmacy" in m.line(json.dumps(event), "server")    # a rule of another source
    assert m.line("{not json", "web") == "{not json"                  # validation says what is wrong
    bad_ip = {"context": {"ip": "<script>"}}
    assert m.event(bad_ip, "web") and bad_ip == {"context": {}}       # what is no address is not kept


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    project = project_on(request, tmp_path)
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw.setdefault("privacy", {})["minimize"] = RULES
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def _event(user: str, **extra) -> dict:
    return {"type": "track", "userId": user, "event": "Searched", "timestamp": T,
            "context": {"ip": "203.0.113.77", "userAgent": IPHONE}, "properties": {"query": "night pharmacy"},
            **extra}


def test_files_and_the_python_api_are_minimized_quarantine_included(project, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in (
        _event("u1"), {**_event("u2"), "event": 7})) + "\n")        # the second is quarantined
    with Engine(project) as engine:
        engine.ingest(events, source="web")
        engine.write_lines([json.dumps(_event("u3"))], "python", "test")
        stored = engine.store.sql("SELECT user_id, context, properties, device FROM events ORDER BY user_id").to_pylist()
        raws = [r["raw"] for r in engine.quarantine()]
    assert [r["user_id"] for r in stored] == ["u1", "u3"]
    assert all(r["device"] == "mobile" for r in stored)               # still known from the class alone
    for row in stored:
        context = json.loads(row["context"])
        assert context == {"ip": "203.0.113.0", "userAgent": "mobile"}
    assert "query" not in json.loads(stored[0]["properties"])         # web's rule
    assert json.loads(stored[1]["properties"]) == {"query": "night pharmacy"}   # not python's
    assert len(raws) == 1 and "203.0.113.77" not in raws[0] and "iPhone" not in raws[0]


def test_the_http_path_minimizes_before_the_event_log(project):
    server = start_server(project)
    try:
        with server.client() as c:
            ok = c.post("/v1/track", auth=(server.write_key, ""), json=_event("web1"))
            assert ok.status_code == 200, ok.text
            # What the event log holds, opened with the project's key (it is encrypted at rest).
            log = FollowedLog(project / ".personable" / "bus", {0: 10 ** 12}, cipher=log_cipher(project))
            held = b"".join(log.read({}, 10_000)[0])
            assert b'"userId":"web1"' in held.replace(b" ", b"")           # the record is there to judge
            assert b"203.0.113.77" not in held and b"night pharmacy" not in held
            bad = c.post("/v1/track", auth=(server.write_key, ""), json={**_event("web2"), "event": 5})
            assert bad.status_code == 400
            doc = c.get("/v1/profiles/web1", headers=server.admin, params={"fresh": "true"}).json()
            quarantined = c.get("/v1/quarantine", headers=server.admin).json()
        assert doc["computed"]["last_device"] == "mobile"
        text = json.dumps(quarantined)
        assert "web2" in text and "203.0.113.77" not in text and "night pharmacy" not in text
    finally:
        stop_server(server)
    with Engine(project) as engine:
        [row] = engine.store.sql("SELECT context FROM events WHERE user_id = 'web1'").to_pylist()
    assert json.loads(row["context"])["ip"] == "203.0.113.0"
