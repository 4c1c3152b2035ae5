"""The architecture, enforced: typed ports that adapters are checked against,
domain packages that never name a backend, one composition root, and the
behaviour that depends on it (projection on the bus, realtime judging that
loses nothing, the scheduler on the injectable clock)."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from personable.clock import SimulatedClock
from personable.scheduler import Job, Scheduler

SRC = Path(__file__).resolve().parents[1] / "src" / "personable"
DOMAIN = ("events", "quality", "identity", "profiles", "segments", "predict", "recommend", "ingest", "privacy",
          "access")
FORBIDDEN = ("duckdb", "psycopg", "redis", "sqlite3", "personable.adapters")
# Checked with mypy --strict: the ports, the root that wires them, and the
# domain packages typed so far (the rest join as they are typed; see docs/architecture.md).
STRICT = ("ports", "compose.py", "profiles", "segments", "bus.py", "clock.py", "scheduler.py", "adapters/postgres",
          "adapters/sql", "adapters/conformance.py", "ingest", "identity",
          "predict", "recommend", "api.py", "client.py", "events", "quality", "server/run.py", "privacy", "access",
          "server/auth.py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


def test_domain_packages_never_import_a_backend():
    offences = []
    for pkg in DOMAIN:
        for path in (SRC / pkg).rglob("*.py"):
            for line, name in _imports(path):
                if name.split(".")[0] in FORBIDDEN or name.startswith(FORBIDDEN) or name == "splink.DuckDBAPI":
                    offences.append(f"{path.relative_to(SRC)}:{line} imports {name}")
            text = path.read_text()
            if 'dialect="duckdb"' in text or "DuckDBAPI" in text:
                offences.append(f"{path.relative_to(SRC)} names a DuckDB dialect or Splink's DuckDBAPI")
    assert not offences, "\n".join(offences)


def test_no_service_reaches_into_the_engine():
    offences = []
    for pkg in DOMAIN:
        for path in (SRC / pkg).rglob("*.py"):
            for line, name in _imports(path):
                if name.startswith("personable.engine"):
                    offences.append(f"{path.relative_to(SRC)}:{line} imports the Engine")
            if "engine._" in path.read_text():
                offences.append(f"{path.relative_to(SRC)} uses the Engine's private parts")
    assert not offences, "\n".join(offences)


def test_ports_and_adapters_typecheck_strictly():
    pytest.importorskip("mypy")
    targets = [str(SRC / t) for t in STRICT]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--ignore-missing-imports", "--no-incremental", *targets],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_adapter_that_drifts_from_its_port_fails_the_type_check(tmp_path):
    """The conformance check is real: a store missing one port method is refused."""
    pytest.importorskip("mypy")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from personable.ports import OnlineStore\n"
        "from personable.adapters.sqlite_online import SQLiteOnlineStore\n"
        "class Broken(SQLiteOnlineStore):\n"
        "    def recommendations(self, profile_id: int) -> str: return ''\n"
        "def check(x: Broken) -> OnlineStore:\n"
        "    return x\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
                           "--no-incremental", str(probe)], capture_output=True, text=True,
                          env={"MYPYPATH": str(SRC.parent), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1 and "OnlineStore" in proc.stdout, proc.stdout


def test_profile_merges_take_any_sequence(tmp_path):
    """``ProfileMerges.merge_profiles`` reads its merges once, in order: a tuple
    (or any sequence) is as good as a list, for callers and for the adapter."""
    pytest.importorskip("mypy")
    probe = tmp_path / "probe_merges.py"
    probe.write_text(
        "from datetime import datetime\n"
        "from personable.ports import ProfileMerges\n"
        "from personable.ports.writes import PipelineSettings\n"
        "from personable.adapters.duckdb.store import DuckDBStore\n"
        "def merge(m: ProfileMerges, s: PipelineSettings) -> int:\n"
        "    return m.merge_profiles(((\"a\", \"b\", None),), \"me\", datetime.now(), s)\n"
        "def check(x: DuckDBStore) -> ProfileMerges:\n"
        "    return x\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--ignore-missing-imports", "--no-incremental", str(probe)], capture_output=True, text=True,
                          env={"MYPYPATH": str(SRC.parent), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout


def test_scheduler_runs_on_simulated_time():
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    ran: list[datetime] = []
    scheduler = Scheduler([Job("refresh", 15 * 60, lambda: ran.append(clock.now()))], clock)
    assert scheduler.run_due() == 1                 # at start
    clock.advance(timedelta(minutes=14))
    assert scheduler.run_due() == 0                 # not yet due
    clock.advance(timedelta(minutes=1))
    assert scheduler.run_due() == 1                 # 15 simulated minutes later, no real waiting
    assert ran == [datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 1, 0, 15, tzinfo=timezone.utc)]


def test_a_failing_job_is_counted_and_retried_at_its_next_turn():
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("store busy")

    scheduler = Scheduler([Job("flaky", 60, flaky)], clock)
    scheduler.run_due()
    clock.advance(timedelta(seconds=60))
    scheduler.run_due()
    assert scheduler.status() == [{"job": "flaky", "interval_s": 60, "runs": 1, "failures": 1}]
