"""Running the server, and the marker that lets the CLI find it.

While ``personable serve`` runs it owns the project's DuckDB file and writes
``.personable/server.json``; CLI commands on the same project see it and talk
to the server over HTTP instead of opening the file, so both work side by side
without lock errors or lost writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..config import STATE_DIR, Config

MARKER = "server.json"


def marker_path(cfg: Config) -> Path:
    return cfg.project_dir / STATE_DIR / MARKER


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(cfg: Config) -> dict[str, Any] | None:
    path = marker_path(cfg)
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(info, dict) or not pid_alive(int(info.get("pid", 0))):
        return None
    return info


def serve(cfg: Config, host: str | None = None, port: int | None = None, log_level: str = "warning") -> None:
    import uvicorn

    from ..engine import Engine
    from ..errors import ServerUnavailable
    from .app import create_app

    existing = running_server(cfg)
    if existing:
        raise ServerUnavailable(f"a server (pid {existing['pid']}) already serves this project at {existing['url']}")
    host = host or cfg.server.host
    port = port or cfg.server.port
    engine = Engine(cfg)
    app = create_app(engine)
    path = marker_path(cfg)
    path.write_text(json.dumps({"pid": os.getpid(), "url": f"http://{host}:{port}"}))
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
