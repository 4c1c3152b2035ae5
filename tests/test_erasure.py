"""Erasure that can be proven (issue: privacy and security, point 3): every
table is registered, a person leaves every table, the online store, the event
log, exports, model artifacts and the audit log's details; a scan finds
nothing of them and the others are intact; the certificate is in the audit
log; erasing is idempotent and resumes after a crash -- on every offline
store, through the Python API, the CLI and a real HTTP server."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import phonenumbers
import pytest

from conftest import OFFLINE_STORES, project_on, run_cli, start_server, stop_server
from personable import Engine
from personable.errors import NotFound, ValidationFailed
from personable.privacy.personal_data import NOT_PERSONAL, PERSONAL, unregistered

T = "2026-11-01T10:00:00Z"


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    return _segments(project_on(request, tmp_path))


def test_every_table_is_registered_and_a_new_one_with_a_person_column_is_caught(project):
    with Engine(project) as engine:
        columns = engine.store.table_columns()
        assert unregistered(columns) == []
        assert set(columns) == set(PERSONAL) | set(NOT_PERSONAL)        # nothing registered that does not exist
        engine.store.sql("SELECT 1")      # the store answers; now a table nobody registered
        with engine.store._writing() as db:
            db.execute("CREATE TABLE loyalty_cards (card_no TEXT, profile_id TEXT)")
            db.execute("CREATE TABLE weather (day DATE, rain DOUBLE PRECISION)")
        problems = unregistered(engine.store.table_columns())
    assert problems == ["loyalty_cards: not registered in privacy/personal_data.py (it has person columns: "
                        "profile_id)", "weather: not registered in privacy/personal_data.py"]


def _people(engine: Engine, exports: Path) -> None:
    """Ann (a visitor first, then signed in, with an alias), and Bob, who must stay whole."""
    engine.page(None, "Home", anonymous_id="anon-ann", timestamp=T)
    engine.identify("ann", {"email": "Ann.Smith@Example.com", "phone": "+1 415 555 0132", "first_name": "Annabelle",
                            "last_name": "Quist", "plan": "pro"}, anonymous_id="anon-ann", timestamp=T)
    engine.alias("ann", "legacy-ann-7", timestamp=T)
    engine.track("ann", "Order Completed", {"order_id": "o1", "revenue": 12.5}, timestamp="2026-11-01T11:00:00Z")
    engine.identify("bob", {"email": "bob@example.com", "first_name": "Robert", "plan": "pro"}, timestamp=T)
    engine.track("bob", "Order Completed", {"order_id": "o2", "revenue": 3.0}, timestamp="2026-11-01T11:00:00Z")
    # A record that failed validation, naming Ann; one naming Bob.
    engine.write_lines(['{"type": "track", "userId": "ann", "event": 5}', '{"type": "track", "userId": "bob", '
                        '"event": 7}'], "python", "test")
    engine.privacy.set_consent("ann", {"marketing_email": False})
    engine.segments.refresh()
    engine.segments.compute()
    engine.segments.export("pros", str(exports / "pros.csv"))
    engine.audit.record("sk_ops", "get_profile", "email:Ann.Smith@Example.com")
    engine.audit.record("sk_ops", "get_profile", "bob")
    engine.audit.record("sk_ops", "search", None, details={"params": {"identifier": "ann"}})


ANN = ["ann", "anon-ann", "legacy-ann-7", "Ann.Smith@Example.com", "ann.smith@example.com", "+1 415 555 0132",
       "+14155550132", "Annabelle", "Quist"]


def _segments(project: Path) -> Path:
    import yaml

    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = {"pros": {"rule": {"trait": "plan", "eq": "pro"}}}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def test_an_erased_person_is_nowhere_and_the_others_are_whole(project):
    exports = project / "exports"
    with Engine(project) as engine:
        _people(engine, exports)
        ann = engine.profile("ann")["profile_id"]
        before = engine.privacy.verify(ANN)
        assert not before["clean"] and {"table events", "table profile_traits", "table quarantine",
                                        "table audit_log"} <= {f["where"] for f in before["findings"]}
        bob_before = engine.profile("bob")
        cert = engine.privacy.erase(["email:ann.smith@example.com"], "privacy-officer")
        assert cert["state"] == "done" and cert["people"] == 1 and cert["hash"]
        removed = cert["removed"]
        assert removed["tables"]["events"] == 4 and removed["tables"]["quarantine"] == 1
        assert removed["tables"]["audit_log"] == 2 and removed["tables"]["segment_members"] == 1
        assert {"profiles", "profile_traits", "identities", "profile_consents", "consent_log",
                "computed_traits"} <= set(removed["tables"])
        assert removed["online_documents"] == 1 and removed["event_log"] == "released"
        assert removed["exports"] == [{"file": str(exports / "pros.csv"), "rows": 1}]
        after = engine.privacy.verify(ANN + [ann])
        assert after["clean"], after["findings"]
        assert after["erasures"][0]["erasure_id"] == cert["erasure_id"]
        # Nothing of Bob went: his profile, events, quarantined record, export row, audit records.
        bob = engine.profile("bob")
        assert bob["traits"] == bob_before["traits"] and bob["computed"]["order_count"] == 1
        assert engine.privacy.verify(["bob@example.com"])["findings"]
        with open(exports / "pros.csv") as fh:
            assert [r["profile_id"] for r in csv.DictReader(fh)] == [bob["profile_id"]]
        assert engine.store.sql("SELECT count(*) AS n FROM quarantine").column("n")[0].as_py() == 1
        # The audit chain still verifies; the records about Ann keep only digests; the certificate is in it.
        assert engine.audit.verify()["ok"]
        log = engine.audit.query(limit=100)
        assert [r["target"] for r in log if r["redacted"]] == [None, None]
        assert [r for r in log if r["target"] == "bob"]
        erased = [r for r in log if r["action"] == "privacy.erase"]
        assert erased[0]["target"] == f"erasure:{cert['erasure_id']}" and erased[0]["actor"] == "privacy-officer"
        assert erased[0]["details"]["hash"] == cert["hash"] and "ann" not in json.dumps(erased[0])
        # Idempotent: erasing again, by any of her ids, answers with the same certificate.
        again = engine.privacy.erase(["ann"], "privacy-officer")
        assert again["erasure_id"] == cert["erasure_id"] and again["already_erased"] == ["ann"]
        with pytest.raises(NotFound):
            engine.privacy.erase(["nobody-ever"], "privacy-officer")
        with pytest.raises(ValidationFailed):
            engine.privacy.erase([" "], "privacy-officer")
        with pytest.raises(NotFound):
            engine.profile("anon-ann")


def test_an_erasure_cut_off_by_a_crash_finishes_when_resumed(project):
    with Engine(project) as engine:
        _people(engine, project / "exports")
        online = engine.components.materialized
        real = online.forget

        def crash(profile_ids):
            raise OSError("the machine went down")

        online.forget = crash
        with pytest.raises(OSError):
            engine.privacy.erase(["ann"], "privacy-officer")
        pending = engine.store.erasures(pending=True)
        subject = pending[0]["subject"]
        assert len(pending) == 1 and {*subject["users"], *subject["anonymous"]} == {"ann", "anon-ann", "legacy-ann-7"}
        assert engine.online.resolve("ann") is not None      # the online store still has her
    online.forget = real
    with Engine(project) as engine:          # a new process: the request is on record
        [done] = engine.privacy.resume_erasures()
        assert done["state"] == "done" and done["removed"]["online_documents"] == 1
        assert done["removed"]["tables"]["events"] == 4       # removed before the crash, and still certified
        assert engine.store.erasures(pending=True) == []
        assert engine.store.erasures(done["erasure_id"])[0]["subject"] is None     # nothing of her kept
        assert engine.privacy.verify(ANN)["clean"]


def test_erasure_over_http_needs_its_scope_and_the_cli_proves_it(project):
    server = start_server(project)
    try:
        officer = json.loads(run_cli("keys", "create", "dpo", "--scope", "privacy:erase", "--json",
                                     project=project).stdout)
        clerk = json.loads(run_cli("keys", "create", "clerk", "--scope", "privacy:*", "--scope", "profiles:read",
                                   "--json", project=project).stdout)
        reader = json.loads(run_cli("keys", "create", "reader", "--scope", "privacy:write", "--json",
                                    project=project).stdout)
        with server.client() as c:
            for who in ("web1", "web2"):
                assert c.post("/v1/identify", auth=(server.write_key, ""), json={
                    "userId": who, "traits": {"email": f"{who}@example.com"}}).status_code == 200
            assert c.get("/v1/profiles/web2", headers=server.admin, params={"fresh": "true"}).status_code == 200
            denied = c.delete("/v1/profiles/web1", headers={"Authorization": f"Bearer {reader['key']}"})
            assert denied.status_code == 403 and "privacy:erase" in denied.json()["error"]["message"]
            gone = c.delete("/v1/profiles/web1", headers={"Authorization": f"Bearer {officer['key']}"})
            assert gone.status_code == 200, gone.text
            cert = gone.json()
            assert cert["state"] == "done" and cert["requested_by"] == officer["key_id"]
            assert cert["removed"]["event_log"] == "released"
            assert c.delete("/v1/profiles/nobody", headers={"Authorization": f"Bearer {officer['key']}"}
                            ).status_code == 404
            proof = c.post("/v1/privacy/verify", headers={"Authorization": f"Bearer {clerk['key']}"},
                           json={"values": ["web1", "web1@example.com"]})
            assert proof.status_code == 200 and proof.json()["clean"], proof.json()
            assert c.post("/v1/privacy/verify", headers=server.admin, json={"values": []}).status_code == 400
            batch = c.post("/v1/admin/privacy/erasures", headers={"Authorization": f"Bearer {officer['key']}"},
                           json={"identifiers": ["web2"]})
            assert batch.status_code == 200 and batch.json()["people"] == 1
        # Through the running server, the CLI proves both erasures; the log names the erasures, not them.
        proof = json.loads(run_cli("privacy", "verify", "web1", "web2@example.com", "--json", project=project).stdout)
        assert proof["clean"] and len(proof["erasures"]) == 2
        log = json.loads(run_cli("audit", "log", "--json", project=project).stdout)
        assert "web1" not in json.dumps(log) and "web2" not in json.dumps(log)
        # The refused call named web1: redacted with the rest; the call for nobody erased no one.
        assert {(r["target"], r["outcome"]) for r in log if r["action"] == "erase_profile"} == {
            (f"erasure:{cert['erasure_id']}", "ok"), (None, "denied"), ("nobody", "error 404")}
        found = run_cli("privacy", "verify", "web1@example.com", "nobody@x.org", project=project)
        assert found.returncode == 0
    finally:
        stop_server(server)
    local = run_cli("privacy", "erase", "nobody", project=project, check=False)
    assert local.returncode != 0 and "no profile for 'nobody'" in local.stdout + local.stderr


def test_a_model_artifact_holding_the_person_is_deleted_and_named_for_retraining(project):
    with Engine(project) as engine:
        _people(engine, project / "exports")
        ann = engine.profile("ann")["profile_id"]
        folder = project / ".personable" / "recommend"
        folder.mkdir(parents=True, exist_ok=True)
        import joblib
        import numpy as np

        joblib.dump({"users": np.array([ann, "someone-else"])}, folder / "v1.joblib")      # UTF-32 inside
        joblib.dump({"items": np.array(["i1", "i2"])}, folder / "v1.serving.joblib")
        cert = engine.privacy.erase(["ann"], "privacy-officer")
    assert cert["removed"]["model_artifacts"] == [str(folder / "v1.joblib")] and cert["retrain"] == ["recommend"]
    assert not (folder / "v1.joblib").exists() and (folder / "v1.serving.joblib").exists()


# -- the scan: 100 simulated people erased, none of them anywhere, everyone else whole -------------------
def _simulated_people(events_path: Path) -> dict[str, dict[str, set[str]]]:
    """userId -> the ids and personal values their events carry."""
    people: dict[str, dict[str, set[str]]] = {}
    for line in events_path.read_text().splitlines():
        e = json.loads(line)
        if not e.get("userId"):
            continue
        p = people.setdefault(e["userId"], {"ids": {e["userId"]}, "values": set()})
        if e.get("anonymousId"):
            p["ids"].add(e["anonymousId"])
        for key in ("email", "phone", "first_name", "last_name"):
            if (e.get("traits") or {}).get(key):
                p["values"].add(str(e["traits"][key]))
        if (e.get("traits") or {}).get("phone"):      # and as the store standardizes it (E.164)
            number = phonenumbers.parse(e["traits"]["phone"], "US")
            p["values"].add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return people


def _whole_word(value: str) -> "re.Pattern[bytes]":
    return re.compile(rb"(?<![A-Za-z0-9_])" + re.escape(value.encode()) + rb"(?![A-Za-z0-9_])")


@pytest.mark.slow
def test_erasing_100_simulated_people_leaves_no_byte_of_them(project, tmp_path):
    from personable.simulator import StoreSpec, simulate

    sim = simulate(tmp_path / "sim", StoreSpec(customers=500, days=20, seed=11))
    people = _simulated_people(sim.events_path)
    erased, kept = sorted(people)[:100], sorted(people)[100:]
    everyone = [v for p in people.values() for v in p["values"]]
    # Names many people share (Maya) prove nothing: only values no kept person has are sought.
    kept_values = {v for uid in kept for v in people[uid]["values"]}
    sought = sorted({v for uid in erased for v in people[uid]["ids"] | people[uid]["values"]} - kept_values)
    assert len(sought) > 400 and len(kept) > 50 and len(everyone) > 1000
    with Engine(project) as engine:
        engine.ingest(sim.events_path)
        before = {uid: engine.profile(uid)["computed"]["event_count"] for uid in kept[:40]}
        cert = engine.privacy.erase([f"user_id:{uid}" for uid in erased], "privacy-officer")
        assert cert["state"] == "done" and cert["people"] == 100
        assert engine.privacy.verify(sought[:50])["clean"]
        rows = {t: engine.store.sql(f"SELECT * FROM {t}").to_pylist() for t in engine.store.table_columns()}
        after = {uid: engine.profile(uid)["computed"]["event_count"] for uid in kept[:40]}
        assert after == before                                   # the others are whole
        assert all(engine.resolve(uid) is None for uid in erased)
    # Every file under .personable/, byte by byte, in UTF-8 and (for NumPy's strings) UTF-32.
    files = [p for p in (project / ".personable").rglob("*") if p.is_file()]
    assert any(p.name == "online.sqlite" for p in files)
    patterns = [(v, _whole_word(v)) for v in sought]
    for path in files:
        data = path.read_bytes()
        found = [v for v, rx in patterns if (v.encode() in data and rx.search(data)) or v.encode("utf-32-le") in data]
        assert not found, f"{path} still holds {found[:5]}"
    # Every table, row by row, as its store reads it back (PostgreSQL's too).
    for table, content in rows.items():
        text = json.dumps(content, default=str).encode()
        found = [v for v, rx in patterns if v.encode() in text and rx.search(text)]
        assert not found, f"table {table} still holds {found[:5]}"


@pytest.mark.services
def test_an_erased_person_leaves_a_redis_online_store(tmp_path, redis_url):
    from personable.config import write_starter

    write_starter(tmp_path / "proj", "redis-shop")
    project = _segments(tmp_path / "proj")
    import yaml

    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["store"]["online"] = redis_url
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(project) as engine:
        _people(engine, project / "exports")
        online = engine.components.materialized
        assert type(online).__name__ == "RedisOnlineStore"
        assert {f["where"] for f in online.scan(["ann", "Ann.Smith@Example.com"])} >= {"online redis docs",
                                                                                     "online redis lookup"}
        cert = engine.privacy.erase(["ann"], "privacy-officer")
        assert cert["removed"]["online_documents"] == 1
        assert online.scan(ANN) == [] and engine.privacy.verify(ANN)["clean"]
        assert engine.online.resolve("ann") is None and engine.online.resolve("bob") is not None
        assert online.scan(["bob"])       # Bob's document, keys and all, stay
