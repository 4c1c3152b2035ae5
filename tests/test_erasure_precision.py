"""Erasure takes the person and no one else (issue: privacy and security,
point 3): free text is matched by what names them alone -- never by a name
others share, nor by a short id standing where it is only a number -- and
however their ids are written (escaped, in another case); the audit log
written before its records took digests still verifies once redacted; the
subject comes from the offline store when the online one lags."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import OFFLINE_STORES, project_on
from personable import Engine

T = "2026-11-01T10:00:00Z"


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    import yaml

    project = project_on(request, tmp_path)
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = {"pros": {"rule": {"trait": "plan", "eq": "pro"}}}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def _quarantined(engine: Engine) -> list[str]:
    rows = engine.store.sql("SELECT raw FROM quarantine ORDER BY id").column("raw").to_pylist()
    return [r for r in rows if r is not None]


def test_only_what_names_them_alone_takes_a_row(project):
    exports = project / "exports"
    with Engine(project) as engine:
        # "10" is a user id, a quantity and an order id; Lee is a last name two people share.
        engine.identify("10", {"email": "jürgen@example.com", "last_name": "Lee", "plan": "pro"}, timestamp=T)
        engine.identify("bob", {"email": "bob@example.com", "last_name": "Lee", "plan": "pro"}, timestamp=T)
        engine.write_lines([
            '{"type": "track", "userId": 10, "event": 5}',                                   # theirs: a numeric id
            '{"type": "identify", "traits": {"email": "J\\u00fcrgen@Example.com"}, "x": 1}',  # theirs: escaped, cased
            '{"type": "track", "userId": "bob", "event": 7, "properties": {"quantity": "10", "last_name": "Lee"}}',
            '{"type": "track", "event": 9, "properties": {"order_id": "10"}}',
        ], "python", "test")
        engine.segments.refresh()
        engine.segments.compute()
        engine.segments.export("pros", str(exports / "pros.csv"))
        engine.audit.record("sk_ops", "get_profile", "user_id:10")
        engine.audit.record("sk_ops", "get_profile", "email:JÜRGEN@example.com")
        engine.audit.record("sk_ops", "list_orders", "10-2026")
        engine.audit.record("sk_ops", "get_order", None, details={"params": {"order": "10"}})
        engine.audit.record("sk_ops", "get_profile", "bob", details={"params": {"last_name": "Lee"}})
        cert = engine.privacy.erase(["10"], "privacy-officer")
        assert cert["state"] == "done"
        assert cert["removed"]["tables"]["quarantine"] == 2 and cert["removed"]["tables"]["audit_log"] == 2
        assert cert["removed"]["exports"] == [{"file": str(exports / "pros.csv"), "rows": 1}]
        left = _quarantined(engine)
        assert len(left) == 2 and all('"bob"' in r or '"order_id": "10"' in r for r in left)
        log = engine.audit.query(limit=50)
        assert {r["target"] for r in log if not r["redacted"] and r["action"] != "privacy.erase"} >= {
            "10-2026", None, "bob"}
        assert [r["details"] for r in log if r["action"] == "get_order"] == [{"params": {"order": "10"}}]
        bob = engine.profile("bob")
        assert bob["traits"]["last_name"] == "Lee"
        with open(exports / "pros.csv") as fh:
            assert [r["profile_id"] for r in csv.DictReader(fh)] == [bob["profile_id"]]
        assert engine.audit.verify()["ok"]
        assert engine.privacy.verify(["jürgen@example.com", "J\\u00fcrgen@Example.com"])["clean"]


def test_an_audit_log_written_before_digests_still_verifies_once_redacted(project):
    from personable.privacy.audit import GENESIS, canonical, link

    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com"}, timestamp=T)
        audit = engine.audit
        # Two records as the chain wrote them before it took digests (schema 12): the raw target and details.
        rows, prev = [], GENESIS
        for seq, target in ((1, "ann"), (2, "bob")):
            at = "2026-10-01T00:00:00.000000+00:00"
            mac = link(audit.key, prev, canonical(seq, at, "sk_ops", "get_profile", target, "ok", {"n": seq}))
            rows.append((seq, at, target, json.dumps({"n": seq}), prev, mac))
            prev = mac
        with engine.store._writing() as db:
            db.executemany("INSERT INTO audit_log (seq, recorded_at, actor, action, target, outcome, details, "
                           "prev_mac, mac) VALUES (?, CAST(? AS TIMESTAMPTZ), 'sk_ops', 'get_profile', ?, 'ok', ?, ?, ?)",
                           rows)
        assert audit.verify()["ok"], audit.verify()["problems"]
        engine.privacy.erase(["ann"], "privacy-officer")
        report = audit.verify()
        assert report["ok"], report["problems"]
        assert any("record 1 predates keyed digests" in w for w in report["warnings"])
        # The mark cannot be forged onto another record: record 2, changed and marked, is caught.
        with engine.store._writing() as db:
            db.execute("UPDATE audit_log SET target = 'eve', redacted = ? WHERE seq = 2",
                       [json.dumps({"legacy": "0" * 64, "target": None, "details": None})])
        assert any(p.startswith("record 2:") for p in audit.verify()["problems"])


def test_the_subject_comes_from_the_offline_store_when_the_online_one_lags(project):
    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com"}, anonymous_id="anon-ann", timestamp=T)
        pid = engine.resolve("ann")
        online = engine.components.materialized
        online.forget([pid])                       # the online store lags: it knows nothing of her yet
        assert engine.resolve("ann") is None
        cert = engine.privacy.erase(["anon-ann"], "privacy-officer")
        assert cert["state"] == "done" and cert["removed"]["tables"]["identities"] >= 2
        assert engine.store.resolve("ann") is None
        assert engine.privacy.verify(["ann", "anon-ann", "ann@example.com", pid])["clean"]


def test_a_merge_that_was_undone_takes_no_one_else_along(project):
    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com"}, timestamp=T)
        engine.identify("bob", {"email": "bob@example.com"}, timestamp=T)
        ann, bob = engine.resolve("ann"), engine.resolve("bob")
        # What an undone probabilistic merge of Bob into Ann leaves: its history row, no redirect.
        with engine.store._writing() as db:
            db.execute("INSERT INTO profile_merges (from_profile, into_profile, merged_at, reason) "
                       "VALUES (?, ?, CAST(? AS TIMESTAMPTZ), 'resolution')", [bob, ann, T])
        engine.privacy.erase(["ann"], "privacy-officer")
        assert engine.resolve("bob") == bob and engine.profile("bob")["traits"]["email"] == "bob@example.com"


def test_a_request_the_log_held_back_is_pending_and_counts_everything_once_done(project):
    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com"}, timestamp=T)
        engine.track("ann", "Order Completed", {"revenue": 3.0}, timestamp=T)
        held = (lambda: None, lambda positions: False)      # the event log will not let go yet
        first = engine.privacy.erasure.erase(["ann"], "privacy-officer", held)
        assert first["state"] == "pending" and first["removed"]["tables"]["events"] == 2
        again = engine.privacy.erasure.erase(["ann"], "privacy-officer", held)    # asked again meanwhile
        assert again["erasure_id"] == first["erasure_id"] and again["state"] == "pending"
        [done] = engine.privacy.erasure.resume()
        assert done["state"] == "done" and done["removed"]["tables"]["events"] == 2     # the first run's, kept
        assert done["removed"]["tables"]["identities"] >= 2
        assert engine.audit.verify()["ok"]


def test_file_rewrites_leave_no_temporary_files(project):
    exports = project / "exports"
    with Engine(project) as engine:
        engine.identify("ann", {"email": "ann@example.com", "plan": "pro"}, timestamp=T)
        engine.identify("bob", {"email": "bob@example.com", "plan": "pro"}, timestamp=T)
        engine.segments.refresh()
        engine.segments.compute()
        engine.segments.export("pros", str(exports / "pros.parquet"))
        (exports / "notes.txt").write_text("ann called on monday\n")        # not an export: left alone
        (exports / "log.jsonl").write_text('{"userId": "ann"}\n{"userId": "bob"}\n')
        cert = engine.privacy.erase(["ann"], "privacy-officer")
    assert sorted(Path(e["file"]).name for e in cert["removed"]["exports"]) == ["log.jsonl", "pros.parquet"]
    assert sorted(p.name for p in exports.iterdir()) == ["log.jsonl", "notes.txt", "pros.parquet"]
    assert (exports / "log.jsonl").read_text() == '{"userId": "bob"}\n'
