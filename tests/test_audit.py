"""The tamper-evident audit log (issue: privacy and security, point 6): every
admin and read call is a record in a hash chain with signed checkpoints, on
every offline store; changing, removing or reordering a record, cutting the
log's tail, or editing the file of checkpoints is caught by `audit verify`;
`audit log` answers "who read this person's data"."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import OFFLINE_STORES, project_on, run_cli, start_server, stop_server
from personable import Engine


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    return project_on(request, tmp_path)


def _filled(engine: Engine, n: int = 12) -> None:
    for i in range(n):
        engine.audit.record("admin", "get_profile", f"u{i % 4}", details={"i": i})
        if i % 5 == 4:
            engine.audit.flush()          # several appends: several checkpoints
    engine.audit.flush()


def _sql(engine: Engine, *statements: str) -> None:
    with engine.store._writing() as db:
        for statement in statements:
            db.execute(statement)


@pytest.mark.parametrize("tamper, expect", [
    (("UPDATE audit_log SET target = 'somebody else' WHERE seq = 5",), "record 5: its content does not match"),
    (("UPDATE audit_log SET actor = 'cli:intern' WHERE seq = 2",), "record 2: its content does not match"),
    (("DELETE FROM audit_log WHERE seq = 7",), "record 8: expected record 7"),
    (("UPDATE audit_log SET seq = 100 WHERE seq = 3", "UPDATE audit_log SET seq = 3 WHERE seq = 4",
      "UPDATE audit_log SET seq = 4 WHERE seq = 100"), "record 3: its link to the record before does not match"),
    (("DELETE FROM audit_log WHERE seq > 10", "DELETE FROM audit_checkpoints WHERE seq > 10"),
     "checkpoint 12 is in the file but not in the store"),
    (("DELETE FROM audit_checkpoints",), "is in the file but not in the store"),
])
def test_verify_catches_a_changed_removed_or_reordered_record_in_the_store(project, tamper, expect):
    with Engine(project) as engine:
        _filled(engine)
        clean = engine.audit.verify()
        assert clean["ok"] and clean["records"] == 12 and clean["checkpoints"] == 3, clean
        _sql(engine, *tamper)
        report = engine.audit.verify()
        assert not report["ok"] and any(expect in p for p in report["problems"]), report["problems"]


def test_verify_catches_an_edited_or_cut_file_of_checkpoints(project):
    with Engine(project) as engine:
        _filled(engine)
        file = project / ".personable" / "audit" / "checkpoints.jsonl"
        lines = file.read_text().splitlines()
        assert len(lines) == 3
        forged = json.loads(lines[1])
        forged["mac"] = "f" * 64
        file.write_text("\n".join([lines[0], json.dumps(forged), lines[2]]) + "\n")
        assert any("checkpoint 10 (file): the signature is not the project's" in p
                   for p in engine.audit.verify()["problems"])
        file.write_text("\n".join([lines[0], lines[2]]) + "\n")      # one cut out of the file
        assert any("checkpoint 10 is in the store but not in the file" in p
                   for p in engine.audit.verify()["problems"])
        file.write_text("\n".join(lines[:2]) + "\n")    # the last one missing: what a crash between the two leaves
        tail = engine.audit.verify()
        assert tail["ok"] and tail["warnings"] == ["checkpoint 12 is in the store but not yet in the file"]
        file.write_text("\n".join(lines) + "\n")
        assert engine.audit.verify()["ok"]


def test_a_control_character_in_a_record_cannot_stop_the_log(project):
    """A path parameter with a NUL (GET /v1/profiles/%00x) made PostgreSQL refuse the
    batch, and every later record waited behind it."""
    with Engine(project) as engine:
        engine.audit.record("pk_x", "get_profile", "a\x00b\x07c", details={"query": {"q": "\x00"}})
        assert engine.audit.flush() == 1
        engine.audit.record("admin", "get_profile", "next")
        assert engine.audit.flush() == 1 and engine.audit.verify()["ok"]
        assert [r["target"] for r in engine.audit.query(actor="pk_x")] == ["a\ufffdb\ufffdc"]


def test_every_call_is_recorded_and_the_log_says_who_read_a_person(project, tmp_path):
    keys = json.loads(run_cli("keys", "create", "crm", "--scope", "profiles:read", "--json", project=project).stdout)
    server = start_server(project)
    try:
        with server.client() as c:
            assert c.post("/v1/identify", auth=(server.write_key, ""), json={"userId": "alice"}).status_code == 200
            bearer = {"Authorization": f"Bearer {keys['key']}"}
            assert c.get("/v1/profiles/alice", headers=bearer, params={"fresh": "true"}).status_code == 200
            assert c.get("/v1/segments", headers=bearer).status_code == 403           # refused: recorded too
            assert c.put("/v1/profiles/alice/consent", headers=server.admin,
                         json={"purposes": {"marketing_email": False}}).status_code == 200
            assert c.get("/v1/profiles/nobody", headers=server.admin).status_code == 404
        # The CLI asks the server, which records the calls it answers.
        who = json.loads(run_cli("audit", "log", "--target", "alice", "--json", project=project).stdout)
        assert [(r["actor"], r["action"], r["outcome"]) for r in reversed(who)] == [
            (keys["key_id"], "get_profile", "ok"), ("admin", "put_consent", "ok")]
        denied = json.loads(run_cli("audit", "log", "--who", keys["key_id"], "--json", project=project).stdout)
        assert {(r["action"], r["outcome"]) for r in denied} == {("get_profile", "ok"), ("list_segments", "denied")}
        assert json.loads(run_cli("audit", "log", "--what", "get_profile", "--target", "nobody", "--json",
                                  project=project).stdout)[0]["outcome"] == "error 404"
        report = json.loads(run_cli("audit", "verify", "--json", project=project).stdout)
        assert report["ok"] and report["records"] >= 5
    finally:
        stop_server(server)
    # Without a server, the CLI's own commands are recorded, by the user who ran them.
    before = datetime.now(timezone.utc).replace(microsecond=0)
    run_cli("profile", "show", "alice", project=project)
    mine = json.loads(run_cli("audit", "log", "--what", "profile show", "--json", project=project).stdout)
    assert mine and mine[0]["actor"].startswith("cli:") and mine[0]["target"] == "alice"
    since = json.loads(run_cli("audit", "log", "--since", before.replace(tzinfo=None).isoformat(), "--json",
                               project=project).stdout)
    assert "profile show" in [r["action"] for r in since] and "put_consent" not in [r["action"] for r in since]
    assert all(datetime.fromisoformat(r["at"]) >= before for r in since)
    assert run_cli("audit", "verify", project=project).returncode == 0
    with Engine(project) as engine:
        _sql(engine, "UPDATE audit_log SET target = 'bob' WHERE action = 'get_profile' AND target = 'alice'")
    broken = run_cli("audit", "verify", project=project, check=False)
    assert broken.returncode == 1 and "tampered" in broken.stdout
