"""Several processes writing to one PostgreSQL-backed project at once: two
``personable serve`` on different ports and the CLI importing a file, all
sending the same people under different anonymous ids. Nothing may be lost,
nothing stored twice, and each person must end as one profile holding every
id -- however the batches of the three processes interleave."""

from __future__ import annotations

import json
import threading

import pytest

from conftest import run_cli, start_server, stop_server
from personable import Engine

PEOPLE, ROUNDS = 12, 8


def _batch(origin: str, round_: int) -> list[dict]:
    events = []
    for person in range(PEOPLE):
        anon = f"{origin}-{person}-{round_}"
        ts = f"2026-02-01T{10 + round_ % 10:02d}:{person:02d}:00Z"
        events.append({"type": "identify", "userId": f"user-{person}", "anonymousId": anon,
                       "messageId": f"{anon}-i", "timestamp": ts, "traits": {"seen_by": origin}})
        events.append({"type": "track", "anonymousId": anon, "event": "Viewed", "messageId": f"{anon}-t",
                       "timestamp": ts})
    return events


@pytest.fixture
def pg_project(project, postgres_url):
    cfg = project / "personable.yaml"
    text = cfg.read_text().replace("offline: duckdb:///.personable/store.duckdb", f"offline: {postgres_url}")
    text = text.replace("bus: file:///.personable/bus", "bus: memory://")
    assert "bus: memory://" in text
    cfg.write_text(text)
    return project


def test_two_servers_and_the_cli_write_one_project_without_loss(pg_project):
    first, second = start_server(pg_project), start_server(pg_project)
    try:
        assert first.port != second.port
        imports = pg_project / "imports"
        imports.mkdir(exist_ok=True)
        (imports / "cli.jsonl").write_text("\n".join(json.dumps(e) for r in range(ROUNDS) for e in _batch("cli", r)))
        failures: list[str] = []

        def send(server, origin: str) -> None:
            with server.client() as http:
                for r in range(ROUNDS):
                    resp = http.post("/v1/batch", json={"batch": _batch(origin, r)}, auth=(server.write_key, ""))
                    if resp.status_code != 200:
                        failures.append(f"{origin}: {resp.status_code} {resp.text[:200]}")

        def cli() -> None:
            proc = run_cli("ingest", str(imports / "cli.jsonl"), "--json", project=pg_project, check=False)
            if proc.returncode != 0:
                failures.append(f"cli: {proc.stdout[-300:]} {proc.stderr[-300:]}")

        threads = [threading.Thread(target=send, args=(first, "a")), threading.Thread(target=send, args=(second, "b")),
                   threading.Thread(target=cli)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert failures == []
        # Both servers read the same database: the second sees what the first stored.
        with second.client() as http:
            doc = http.get("/v1/profiles/user-3", headers=second.admin).json()
        assert {i["value"] for i in doc["identities"] if i["kind"] == "anonymous_id"} >= {"a-3-0", "b-3-0", "cli-3-0"}
    finally:
        stop_server(second)
        stop_server(first)
    with Engine(pg_project) as engine:
        stats = engine.stats()
        assert stats["events"] == 3 * ROUNDS * PEOPLE * 2
        assert stats["profiles"] == PEOPLE
        for person in range(PEOPLE):
            d = engine.profile(f"user-{person}")
            assert d["computed"]["event_count"] == 3 * ROUNDS * 2
            assert len([i for i in d["identities"] if i["kind"] == "anonymous_id"]) == 3 * ROUNDS


def test_a_second_server_on_a_file_log_is_refused(project, postgres_url):
    """The file event log is one process's: two servers on it would interleave
    their appends, so the second is refused, saying what to change."""
    cfg = project / "personable.yaml"
    cfg.write_text(cfg.read_text().replace("offline: duckdb:///.personable/store.duckdb", f"offline: {postgres_url}"))
    first = start_server(project)
    try:
        proc = run_cli("serve", "--port", "0", project=project, check=False)
        assert proc.returncode != 0 and "memory://" in proc.stdout + proc.stderr
    finally:
        stop_server(first)
