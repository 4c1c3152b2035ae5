"""Running the server, and the marker that lets the CLI find it.

While ``personable serve`` runs it owns the project's DuckDB file and writes
``.personable/server.json``; CLI commands on the same project see it and talk
to the server over HTTP instead of opening the file, so both work side by side
without lock errors or lost writes. A project on a store that serves many
processes (PostgreSQL) writing straight to it (``store.bus: memory://``) may
run several servers: the first writes the marker, the others only serve.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..processes import pid_alive
from ..config import STATE_DIR, Config

MARKER = "server.json"


def marker_path(cfg: Config) -> Path:
    return cfg.project_dir / STATE_DIR / MARKER


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc; None
    where there is no /proc): with the pid it names one process, even after
    the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ")" may hold spaces


def _answers(url: str, name: str) -> bool:
    """Whether a personable server for project ``name`` answers at ``url``."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1.0) as resp:
            return json.loads(resp.read()).get("project") == name
    except (OSError, ValueError, AttributeError):
        return False


def running_server(cfg: Config) -> dict[str, Any] | None:
    """The server named by the marker, if it really is ours and alive.

    A marker left by a crashed server may name a pid now used by some other
    process, which used to lock the CLI out of its own project: the pid must
    also have the start time the server recorded (or, where that cannot be
    read, the URL must answer as this project's server)."""
    path = marker_path(cfg)
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int) or not pid_alive(info["pid"]):
        return None
    started = process_start(info["pid"])
    if started is not None and info.get("started") is not None:
        return info if started == info["started"] else None
    return info if _answers(str(info.get("url", "")), cfg.name) else None


def serve(cfg: Config, host: str | None = None, port: int | None = None, log_level: str = "warning") -> None:
    import uvicorn

    from ..engine import Engine
    from ..errors import ServerUnavailable
    from .app import create_app

    existing = running_server(cfg)
    several = ("several servers need a store that serves many processes (postgresql://) "
               "and store.bus: memory:// (the file event log is one process's)")
    if existing and not existing.get("shared"):
        raise ServerUnavailable(f"a server (pid {existing['pid']}) already serves this project at {existing['url']}; "
                                f"{several}")
    host = host or cfg.server.host
    port = port or cfg.server.port
    engine = Engine(cfg)
    # A store that serves many processes (PostgreSQL) may have many servers; the
    # event log stays one process's, so they write through (store.bus: memory://).
    shared = "concurrent_writers" in engine.store.capabilities and engine.log is None
    if existing and not shared:
        engine.close()
        raise ServerUnavailable(f"a server (pid {existing['pid']}) already serves this project at {existing['url']}; "
                                f"{several}")
    app = create_app(engine)
    path = marker_path(cfg)
    if not existing:   # the first server is the one the CLI finds; the others only serve
        path.write_text(json.dumps({"pid": os.getpid(), "started": process_start(os.getpid()),
                                    "url": f"http://{host}:{port}", "shared": shared}))
    try:
        # An idle kept-alive connection is closed after 5 s and a request's
        # headers may not exceed 64 KB, so slow or idle clients cannot pile up
        # sockets until the fd limit (the body has its own timeout, body.py).
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                    timeout_keep_alive=5, h11_max_incomplete_event_size=65_536)
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        engine.close()
