"""Import hygiene: reading the configuration and the CLI's help stay light.

`personable status` took 2.5-10 s because loading personable.yaml imported
pandas, scipy, Ibis and sqlglot. Each check runs a fresh interpreter with this
checkout's ``src`` first on the path and looks at what it imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
BIN = Path(sys.executable).parent
# The analytics and ML stack: seconds to import, and nothing a config or --help needs.
HEAVY = ("pandas", "ibis", "duckdb", "sklearn", "lightgbm", "scipy", "sqlglot", "pyarrow", "splink", "implicit")
# What `personable status` may import once it opens the store (it counts rows in DuckDB).
ML_STACK = ("pandas", "sklearn", "lightgbm", "scipy", "splink", "implicit")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "200"}


def _imported_by(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    script = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split("\n")[-2].split())


def _imported_by_command(*args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the real console script; -X importtime lists every module it imported."""
    proc = subprocess.run([str(BIN / "personable"), *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**_env(), "PYTHONPROFILEIMPORTTIME": "1"})
    modules = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return proc, modules


def test_the_check_sees_this_checkout():
    found = subprocess.run([sys.executable, "-c", "import personable; print(personable.__file__)"],
                           capture_output=True, text=True, env=_env()).stdout.strip()
    assert Path(found).resolve().is_relative_to(SRC)


@pytest.mark.parametrize("code", [
    "import personable",
    "import personable.config",
    "from personable.config import load_config, json_schema",
    # every domain's configuration, and the rule language segments are read with
    "import personable.quality.config, personable.segments.config, personable.predict.config",
    "import personable.recommend.config, personable.identity.resolution.config, personable.segments.rules",
])
def test_reading_configuration_imports_no_heavy_package(code):
    assert _imported_by(code) & set(HEAVY) == set()


def test_loading_a_project_and_finding_its_server_is_light(project: Path):
    # What `personable status` (and every command) does before it opens a store.
    code = (f"from personable.config import load_config\nfrom personable.server.run import running_server\n"
            f"import personable.cli.main\nrunning_server(load_config({str(project)!r}))")
    assert _imported_by(code) & set(HEAVY) == set()


def test_help_imports_no_heavy_package():
    proc, modules = _imported_by_command("--help")
    assert proc.returncode == 0 and "status" in proc.stdout
    assert modules and modules & set(HEAVY) == set()
    proc, modules = _imported_by_command("config", "--help")
    assert proc.returncode == 0 and modules & set(HEAVY) == set()


def test_status_opens_the_store_without_the_ml_stack(project: Path):
    proc, modules = _imported_by_command("--project", str(project), "status", "--json")
    assert proc.returncode == 0 and '"events": 0' in proc.stdout
    assert "duckdb" in modules and modules & set(ML_STACK) == set()
    # Nor Ibis and sqlglot: the write path's expressions are built on first use,
    # not when the store's modules load (they cost `status` ~0.4 s).
    assert not {"ibis", "sqlglot"} & modules


def test_status_names_the_engines_log_stream():
    from personable.cli.main import LOG_STREAM
    from personable.engine import LOG_STREAM as ENGINE_STREAM

    assert LOG_STREAM == ENGINE_STREAM
