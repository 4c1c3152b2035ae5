"""`personable serve` with the store in its own process (server/host.py): the
HTTP process only logs collection, the store process stores it and answers the
rest. Real servers, real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx

import pytest

from conftest import run_cli, start_server, stop_server
from personable.adapters.filelog import FileLog, FollowedLog


@pytest.fixture
def project(project):
    """The starter project with the store in its own process (off by default)."""
    yaml = project / "personable.yaml"
    yaml.write_text(yaml.read_text().replace("store_process: false", "store_process: true"))
    return project


def _track(c: httpx.Client, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        r = c.post("/v1/track", json={"userId": f"s{i}", "event": "X", "timestamp": "2026-02-01T09:00:00Z"})
        assert r.status_code == 200, r.text


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:   # a zombie of ours is gone too
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


def test_a_follower_reads_only_what_the_writer_announced(tmp_path):
    writer = FileLog(tmp_path / "log")
    end = writer.append([b"a", b"b"])
    follower = FollowedLog(tmp_path / "log", {0: 0})
    assert follower.read({0: 0}, 10) == ([], {0: 0})           # written, fsync'ed, but not announced
    assert not follower.wait_beyond({0: 0}, 0.05)
    follower.announce(end)
    assert follower.wait_beyond({0: 0}, 0.05)
    assert follower.read({0: 0}, 10) == ([b"a", b"b"], end)
    writer.append([b"c"])
    assert follower.read(end, 10) == ([], end)                  # not announced yet
    follower.announce({0: 0})                                   # an older end changes nothing
    assert follower.end() == end
    writer.close()


def test_the_store_process_stores_and_answers(project):
    server = start_server(project)
    try:
        with server.client() as c:
            health = c.get("/healthz").json()
            assert health["store_process"] is True and health["store_restarts"] == 0
            assert health["store_pid"] != server.proc.pid
            _track(httpx.Client(base_url=server.url, auth=(server.write_key, "")), 5)
            stats = c.get("/v1/stats?fresh=true", headers=server.admin).json()
            assert stats["events"] == 5
            # An error raised in the store process reaches the client as the same error.
            r = c.get("/v1/profiles/nobody", headers=server.admin)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            r = c.get("/v1/segments/no-such-segment", headers=server.admin)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    finally:
        stop_server(server)
    assert not (project / ".personable" / "store.json").exists()


def test_a_killed_store_process_is_replaced_and_nothing_is_lost(project):
    server = start_server(project)
    try:
        with server.client() as c, httpx.Client(base_url=server.url, auth=(server.write_key, "")) as w:
            _track(w, 10)
            pid = c.get("/healthz").json()["store_pid"]
            os.kill(pid, signal.SIGKILL)
            _wait(lambda: _gone(pid))
            _track(w, 10, start=10)      # collection needs only the log: it goes on
            time.sleep(1.5)              # the new store process is starting now (after a 1 s pause)
            _track(w, 10, start=20)      # appended while it starts, and nothing after them
            _wait(lambda: c.get("/healthz").status_code == 200 and c.get("/healthz").json()["store_restarts"] == 1)
            assert c.get("/healthz").json()["store_pid"] != pid

            def stored() -> int:     # not `fresh`: the worker must get to them on its own
                r = c.get("/v1/stats", headers=server.admin)
                return r.json()["events"] if r.status_code == 200 else -1

            _wait(lambda: stored() == 30, timeout=30)
    finally:
        stop_server(server)


def test_a_killed_http_process_leaves_its_store_process_to_finish(project):
    server = start_server(project)
    with server.client() as c, httpx.Client(base_url=server.url, auth=(server.write_key, "")) as w:
        _track(w, 30)
        pid = c.get("/healthz").json()["store_pid"]
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    # The CLI waits for the store process to store what was acknowledged and let go of the store.
    stats = json.loads(run_cli("status", "--json", project=project).stdout)
    assert stats["events"] == 30
    _wait(lambda: _gone(pid), 30)      # and then exits


def test_one_process_when_configured(project):
    yaml = project / "personable.yaml"
    yaml.write_text(yaml.read_text().replace("store_process: true", "store_process: false"))
    server = start_server(project)
    try:
        with server.client() as c:
            assert c.get("/healthz").json()["store_process"] is False
            _track(httpx.Client(base_url=server.url, auth=(server.write_key, "")), 3)
            assert c.get("/v1/stats?fresh=true", headers=server.admin).json()["events"] == 3
    finally:
        stop_server(server)
