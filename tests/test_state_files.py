"""The state folder is the owner's alone (issue: privacy, point 2): every
folder under .personable/ is 0700 and every file 0600, whoever made them --
the CLI, a server, or the Python API in a process with a lenient umask."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import run_cli, start_server, stop_server
from personable import Engine
from personable.config import write_starter


def _modes(state: Path) -> dict[str, int]:
    out = {".": state.stat().st_mode & 0o777}
    for p in state.rglob("*"):
        if not p.is_symlink():
            out[str(p.relative_to(state))] = p.stat().st_mode & 0o777
    return out


def _loose(state: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in _modes(state).items()
            if mode != (0o700 if (state / name).is_dir() else 0o600)}


def test_state_files_are_owner_only_from_the_python_api(tmp_path):
    old = os.umask(0o022)          # a library user's usual umask: new files would be 0644
    try:
        project = tmp_path / "proj"
        write_starter(project, "files")
        with Engine(project) as engine:
            engine.identify("u1", {"email": "u1@example.com"})
            assert _loose(project / ".personable") == {}
        assert _loose(project / ".personable") == {}
        assert (project / ".personable" / "store.duckdb").exists()
    finally:
        os.umask(old)


def test_state_files_are_owner_only_under_the_cli_and_a_server(tmp_path):
    project = tmp_path / "proj"
    run_cli("init", "--name", "files", project=project)
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"type": "identify", "userId": "u1", "traits": {"email": "a@b.com"},
                                  "timestamp": "2026-11-01T10:00:00Z"}) + "\n")
    run_cli("ingest", str(events), project=project)
    run_cli("keys", "create", "ops", "--scope", "admin", project=project)
    server = start_server(project)
    try:
        with server.client() as c:
            assert c.post("/v1/identify", auth=(server.write_key, ""), json={"userId": "u2"}).status_code == 200
            assert c.get("/v1/profiles/u2", headers=server.admin, params={"fresh": "true"}).status_code == 200
            assert _loose(project / ".personable") == {}
    finally:
        stop_server(server)
    assert _loose(project / ".personable") == {}
    assert {"store.duckdb", "online.sqlite", "keys.json", "api_keys.json", "bus"} <= set(_modes(project / ".personable"))
