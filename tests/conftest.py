from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from personable.config import write_starter

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_starter(tmp_path / "proj", "test-shop")
    return tmp_path / "proj"


@pytest.fixture
def engine(project: Path):
    from personable import Engine

    with Engine(project) as e:
        yield e


def keys(project: Path) -> dict:
    return json.loads((project / ".personable" / "keys.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    def __init__(self, project: Path, port: int, proc: subprocess.Popen):
        self.project, self.port, self.proc = project, port, proc
        self.url = f"http://127.0.0.1:{port}"
        k = keys(project)
        self.write_key = k["write_keys"]["web"]
        self.admin = {"Authorization": f"Bearer {k['admin_token']}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def start_server(project: Path) -> RunningServer:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "personable"), "--project", str(project), "serve", "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return RunningServer(project, port, proc)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start in 30 s")


def stop_server(server: RunningServer) -> None:
    server.proc.send_signal(signal.SIGINT)
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def wait_for_job(server: RunningServer, name: str, timeout: float = 120) -> dict:
    """The scheduler's record of job ``name`` once it has run (or failed) once."""
    deadline = time.time() + timeout
    while True:
        job = next(j for j in httpx.get(f"{server.url}/healthz", timeout=5).json()["jobs"] if j["job"] == name)
        if job["runs"] or job["failures"] or time.time() > deadline:
            return job
        time.sleep(0.5)


@pytest.fixture
def server(project: Path):
    s = start_server(project)
    yield s
    stop_server(s)


def run_cli(*args: str, project: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "personable")]
    if project is not None:
        cmd += ["--project", str(project)]
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd + list(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
