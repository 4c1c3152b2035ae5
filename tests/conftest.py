from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from personable.config import write_starter

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# -- real servers: Redis and PostgreSQL, started by scripts/test-services.sh ----------
SERVICE_FIXTURES = {"test_services", "redis_server_url", "redis_url", "postgres_server_url", "postgres_url",
                    "module_postgres_url"}


def pytest_collection_modifyitems(items):
    # Whatever needs a server is marked, so `make test-fast` (-m "not services") skips it.
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def _services_missing(reason: str):
    # In CI the servers are part of the test setup: their absence is a failure, never a skip.
    if IN_CI:
        pytest.fail(f"test servers unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"test servers unavailable ({reason}); run `make test-services`")


@pytest.fixture(scope="session")
def test_services() -> dict[str, str]:
    """The state of the private Redis and PostgreSQL (ports, URLs), started or
    reused by scripts/test-services.sh. Only in CI may it install packages;
    locally that is `make test-services`' job."""
    cmd = ["bash", str(ROOT / "scripts" / "test-services.sh"), "start"] + ([] if IN_CI else ["--no-install"])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _services_missing(str(exc))
    if proc.returncode != 0:
        _services_missing(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    state = {}
    for line in (ROOT / ".test-services" / "state.env").read_text().splitlines():
        name, _, value = line.partition("=")
        state[name] = value
    return state


@pytest.fixture(scope="session")
def redis_server_url(test_services) -> str:
    """``redis://127.0.0.1:<port>/0`` of the private test Redis (shared: use ``redis_url``)."""
    return test_services["REDIS_URL"]


@pytest.fixture
def redis_url(redis_server_url):
    """A Redis URL with a key prefix of this test's own; its keys are deleted after."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield f"{redis_server_url}?prefix={prefix}"
    client = redis.Redis.from_url(redis_server_url)
    try:
        for batch in _chunks(client.scan_iter(match=f"{prefix}*", count=1000), 500):
            client.unlink(*batch)
    finally:
        client.close()


def _chunks(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@pytest.fixture(scope="session")
def postgres_server_url(test_services) -> str:
    """``postgresql://…/postgres`` of the private test cluster (shared: use ``postgres_url``)."""
    return test_services["PG_URL"]


def create_database(server_url: str, template: str | None = None) -> str:
    """The URL of a new database on the test cluster: empty, or a copy of
    ``template`` (a database URL; nobody may be connected to it)."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:16]}"
    sql = f'CREATE DATABASE "{name}"'
    if template is not None:
        sql += f' TEMPLATE "{template.rsplit("/", 1)[1]}"'
    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(sql)
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_server_url):
    """A fresh, empty database of this test's own (CREATE DATABASE), dropped after."""
    url = create_database(postgres_server_url)
    yield url
    drop_database(postgres_server_url, url)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_server_url):
    """``postgres_url`` for a module-scoped fixture: a fresh database, dropped
    after the module (a module has one such database, so at most one of its
    module-scoped fixtures may use it)."""
    url = create_database(postgres_server_url)
    yield url
    drop_database(postgres_server_url, url)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_starter(tmp_path / "proj", "test-shop")
    return tmp_path / "proj"


# Test modules that must hold on every offline store override ``project``:
#     @pytest.fixture(params=OFFLINE_STORES)
#     def project(request, tmp_path): return project_on(request, tmp_path)
# or parametrize their module-scoped fixtures the same way:
#     @pytest.fixture(scope="module", params=OFFLINE_STORES)
#     def shop(request, tmp_path_factory): project = project_on(request, tmp_path_factory.mktemp("shop")) ...
OFFLINE_STORES = [pytest.param("duckdb", id="duckdb"),
                  pytest.param("postgres", id="postgres", marks=pytest.mark.services)]
DUCKDB_OFFLINE = "offline: duckdb:///.personable/store.duckdb"


def project_on(request, tmp_path: Path, name: str = "test-shop") -> Path:
    """A starter project whose offline store is ``request.param`` (a fresh
    PostgreSQL database of its own for "postgres": ``postgres_url`` for a
    function-scoped fixture, ``module_postgres_url`` for a module-scoped one)."""
    project = tmp_path / "proj"
    write_starter(project, name)
    if request.param == "postgres":
        url = request.getfixturevalue("module_postgres_url" if request.scope == "module" else "postgres_url")
        cfg = project / "personable.yaml"
        cfg.write_text(cfg.read_text().replace(DUCKDB_OFFLINE, f"offline: {url}"))
        assert offline_url(project) == url, "the starter's offline store line changed: update DUCKDB_OFFLINE"
    return project


def offline_url(project: Path) -> str:
    import yaml

    return yaml.safe_load((project / "personable.yaml").read_text())["store"]["offline"]


@pytest.fixture
def copy_project(request):
    """``copy_project(src, dst)``: an independent copy of project ``src`` (a
    module's prepared store) at ``dst``, to change without touching ``src``.
    The folder is copied; a PostgreSQL offline store is copied too, into a new
    database (CREATE DATABASE ... TEMPLATE), dropped after the test."""
    made: list[str] = []

    def copy(src: Path, dst: Path) -> Path:
        import shutil

        shutil.copytree(src, dst)
        url = offline_url(src)
        if url.startswith("postgresql://"):
            server = request.getfixturevalue("postgres_server_url")
            new = create_database(server, template=url)
            made.append(new)
            cfg = dst / "personable.yaml"
            cfg.write_text(cfg.read_text().replace(f"offline: {url}", f"offline: {new}"))
            assert offline_url(dst) == new
        return dst

    yield copy
    if made:
        server = request.getfixturevalue("postgres_server_url")
        for url in made:
            drop_database(server, url)


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
