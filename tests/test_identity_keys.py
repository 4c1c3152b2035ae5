"""Identity keys (issue: privacy and security, point 2): emails and phones are
stored as HMAC-SHA-256 digests under the project's key, written with its id;
`personable privacy rekey` rotates the key and rewraps every digest (offline
and online) without splitting anyone; a store from before keys is brought
under one when opened; a process with stale keys is refused -- on both
offline stores, through the CLI and a real HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from conftest import OFFLINE_STORES, project_on, run_cli, start_server, stop_server
from personable import Engine
from personable.errors import ConfigError

T = "2026-11-01T10:00:00Z"


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    return project_on(request, tmp_path)


def _keys(project) -> list[tuple[str, bytes]]:
    stored = json.loads((project / ".personable" / "keys.json").read_text())["identity_keys"]
    return [(k["id"], base64.b64decode(k["secret"])) for k in stored]


def _chain(keys: list[tuple[str, bytes]], normalized: str) -> str:
    """The stored form, computed here from the definition: HMAC over HMAC over SHA-256."""
    value = hashlib.sha256(normalized.encode()).hexdigest()
    for _, secret in keys:
        value = hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()
    return f"{keys[-1][0]}:{value}"


def _identities(engine: Engine) -> dict[tuple[str, str], str]:
    rows = engine.store.sql("SELECT kind, value, profile_id FROM identities").to_pylist()
    return {(r["kind"], r["value"]): r["profile_id"] for r in rows}


def test_identities_are_keyed_digests_and_a_rotation_rewraps_them_all(project):
    with Engine(project) as engine:
        engine.identify("ann", {"email": "Ann@Example.com", "phone": "+1 415 555 0132"}, timestamp=T)
        pid = engine.resolve("ann")
        keys = _keys(project)
        assert [k for k, _ in keys] == ["k1"]
        ids = _identities(engine)
        assert ids[("email", _chain(keys, "ann@example.com"))] == pid
        assert ids[("phone", _chain(keys, "+14155550132"))] == pid
        assert ("email", hashlib.sha256(b"ann@example.com").hexdigest()) not in ids     # no unkeyed digest
        report = engine.privacy.rekey()
        assert report["key_id"] == "k2" and report["previous_key_id"] == "k1"
        assert report["rekeyed"]["identities"] == 2
        keys = _keys(project)
        ids = _identities(engine)
        assert ids[("email", _chain(keys, "ann@example.com"))] == pid
        assert not [v for (k, v) in ids if k in ("email", "phone") and not v.startswith("k2:")]
        # Lookups and the write path use the new key: the same email joins the same person.
        assert engine.resolve("email:ANN@example.com") == engine.resolve("phone:(415) 555-0132") == pid
        engine.identify(None, {"email": "ann@example.com"}, anonymous_id="ann-phone", timestamp=T)
        assert engine.resolve("ann-phone") == pid
        online = engine.components.materialized
        if online is not None:
            assert report["online_documents"] >= 1 and report["online_keys_dropped"] == 2
            assert not [f for f in online.scan(["k1:"]) if f.get("values")]
    with Engine(project) as engine:       # a new process reads the keys and the store's key id
        assert engine.resolve("email:ann@example.com") == pid
        assert engine.privacy.rekey()["key_id"] == "k3"


def test_a_store_from_before_keys_is_keyed_when_opened(project):
    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com"}, timestamp=T)
        pid = engine.resolve("ann")
        # As the store was before keys: the unkeyed SHA-256 digest, and no key on record.
        with engine.store._writing() as db:
            db.execute("UPDATE identities SET value = ? WHERE kind = 'email'",
                       [hashlib.sha256(b"ann@example.com").hexdigest()])
            db.execute("DELETE FROM identity_keys")
    with Engine(project) as engine:
        assert engine.store.identity_key() == ("k1", True)
        assert _identities(engine)[("email", _chain(_keys(project), "ann@example.com"))] == pid
        assert engine.resolve("email:ann@example.com") == pid


def test_a_rotation_cut_off_before_the_online_store_is_finished_on_open(project):
    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com"}, timestamp=T)
        pid = engine.resolve("ann")
        online = engine.components.materialized
        if online is None:
            pytest.skip("this project reads profiles from its offline store: there is no online store to finish")

        def crash(kinds, key_id):
            raise OSError("the machine went down")

        online.prune_keys = crash
        with pytest.raises(OSError):
            engine.privacy.rekey()
        assert engine.store.identity_key() == ("k2", False)
    with Engine(project) as engine:           # the next open finishes the online side
        assert engine.store.identity_key() == ("k2", True)
        assert engine.resolve("email:ann@example.com") == pid
        assert not [f for f in engine.components.materialized.scan(["k1:"]) if f.get("values")]


def test_verify_finds_a_leftover_identity_by_its_keyed_digest(project):
    with Engine(project) as engine:
        digest = engine.components.hasher.digest("left@example.com")
        with engine.store._writing() as db:
            db.execute("INSERT INTO identities (kind, value, profile_id) VALUES ('email', ?, 'p_gone')", [digest])
        report = engine.privacy.verify(["left@example.com"])
        assert not report["clean"]
        assert any(f["where"] == "table identities" and digest in f["values"] for f in report["findings"])


def test_a_process_with_stale_keys_is_refused(project, monkeypatch):
    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com"}, timestamp=T)
        engine.privacy.rekey()
    first = _keys(project)[:1]
    monkeypatch.setenv("PERSONABLE_IDENTITY_KEYS", json.dumps(
        [{"id": k, "secret": base64.b64encode(s).decode()} for k, s in first]))
    with pytest.raises(ConfigError, match="keyed with 'k2'"):
        Engine(project)


def test_rekey_over_http_needs_admin_and_the_cli_rotates(tmp_path):
    from personable.config import write_starter

    project = tmp_path / "proj"
    write_starter(project, "keys-shop")
    server = start_server(project)
    try:
        clerk = json.loads(run_cli("keys", "create", "clerk", "--scope", "privacy:*", "--json",
                                   project=project).stdout)
        with server.client() as c:
            assert c.post("/v1/identify", auth=(server.write_key, ""), json={
                "userId": "web1", "traits": {"email": "web1@example.com"}}).status_code == 200
            denied = c.post("/v1/admin/privacy/rekey", headers={"Authorization": f"Bearer {clerk['key']}"})
            assert denied.status_code == 403 and "admin" in denied.json()["error"]["message"]
            done = c.post("/v1/admin/privacy/rekey", headers=server.admin)
            assert done.status_code == 200 and done.json()["key_id"] == "k2", done.text
            found = c.get("/v1/profiles/email:web1@example.com", headers=server.admin, params={"fresh": "true"})
            assert found.status_code == 200
        again = json.loads(run_cli("privacy", "rekey", "--json", project=project).stdout)   # through the server
        assert again["key_id"] == "k3" and again["previous_key_id"] == "k2"
    finally:
        stop_server(server)
    local = json.loads(run_cli("privacy", "rekey", "--json", project=project).stdout)
    assert local["key_id"] == "k4"
