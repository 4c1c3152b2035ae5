"""Running the server, and the marker that lets the CLI find it.

While ``personable serve`` runs it owns the project's DuckDB file and writes
``.personable/server.json``; CLI commands on the same project see it and talk
to the server over HTTP instead of opening the file, so both work side by side
without lock errors or lost writes. A project on a store that serves many
processes (PostgreSQL) writing straight to it (``store.bus: memory://``) may
run several servers: the first writes the marker, the others only serve.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..processes import pid_alive
from ..config import STATE_DIR, Config

if TYPE_CHECKING:
    from .host import HostedEngine

MARKER = "server.json"
STORE_MARKER = "store.json"     # the server's store process (server/host.py), while it holds the store
STORE_WAIT_S = 300.0


def marker_path(cfg: Config, name: str = MARKER) -> Path:
    return cfg.project_dir / STATE_DIR / name


def write_marker(path: Path, **info: Any) -> None:
    path.write_text(json.dumps({"pid": os.getpid(), "started": process_start(os.getpid()), **info}))


def remove_marker(path: Path) -> None:
    """Remove the marker if it is this process's."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (FileNotFoundError, json.JSONDecodeError):
        pass


def _same_process(info: Any) -> bool | None:
    """Whether a marker names a live process: its pid alive, with the start time
    it recorded (a pid may have been reused since). None: alive, but its start
    time cannot be compared (no /proc, or none recorded)."""
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int) or not pid_alive(info["pid"]):
        return False
    started = process_start(info["pid"])
    if started is None or info.get("started") is None:
        return None
    return bool(started == info["started"])


def _live(info: Any) -> bool:
    return _same_process(info) is not False


def wait_for_store_process(cfg: Config, timeout: float = STORE_WAIT_S) -> None:
    """A server's store process outlives a server that was killed: it stores the
    events the server acknowledged, then closes the store. Whoever opens the
    project's files next waits for that instead of failing on the store's lock."""
    import sys
    import time

    path = marker_path(cfg, STORE_MARKER)
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return
    if not _live(info):
        return
    print(f"waiting for the last server's store process (pid {info['pid']}) to store what it accepted ...",
          file=sys.stderr)
    deadline = time.monotonic() + timeout
    while _live(info) and time.monotonic() < deadline:
        time.sleep(0.1)


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc; None
    where there is no /proc): with the pid it names one process, even after
    the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ")" may hold spaces


def _answers(url: str, name: str, cafile: str | None = None) -> bool:
    """Whether a personable server for project ``name`` answers at ``url``
    (over HTTPS: trusting the server's own certificate, ``cafile``)."""
    import ssl
    import urllib.request

    try:
        context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
        with urllib.request.urlopen(f"{url}/healthz", timeout=1.0, context=context) as resp:
            return bool(json.loads(resp.read()).get("project") == name)
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
        info = None
    same = _same_process(info)
    if same is False:
        wait_for_store_process(cfg)
        return None
    found: dict[str, Any] = info
    if same is True:
        return found
    return found if _answers(str(found.get("url", "")), cfg.name, found.get("tls_cert")) else None


REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
HEADERS_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
MAX_HEADER_BYTES = 65_536   # h11 is told the same (h11_max_incomplete_event_size); httptools has no such limit


def header_timeout_protocol(seconds: float, base: type[asyncio.Protocol] | None = None) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools, else h11) with a deadline on the
    request line and headers: they must have arrived ``seconds`` after the
    server started waiting for them (the connection opened, or the previous
    response went out), else the server answers 408 and closes. They may not
    exceed ``MAX_HEADER_BYTES`` either (431 and close), with httptools too.

    uvicorn has no such timeout: ``timeout_keep_alive`` only runs while a
    kept-alive connection is silent, and the first byte of a request cancels
    it, so a client that sends half a request line (or connects and sends
    nothing) held its socket forever. The body has its own deadline in the
    application (``body.py``), which can answer with a JSON error. ``base``:
    uvicorn's protocol class to extend (default: the one uvicorn picks)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    parent: Any = base or AutoHTTPProtocol

    class HeaderDeadline(parent):   # type: ignore[misc]   # uvicorn's protocols are chosen at run time
        _deadline: asyncio.TimerHandle | None = None
        _waiting_since: object = None    # the request cycle current when the deadline was armed
        _header_bytes = 0                # received while waiting for the headers

        def _arm(self) -> None:
            self._disarm()
            self._waiting_since, self._header_bytes = self.cycle, 0
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _refuse(self, response: bytes) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self.transport.write(response)
                self.transport.close()

        def _expired(self) -> None:
            self._deadline = None
            if self.cycle is self._waiting_since:
                self._refuse(REQUEST_TIMEOUT)

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._deadline is None:
                return
            if self.cycle is not self._waiting_since:
                self._disarm()    # a new request's headers are in: the deadline is met
            else:                 # still waiting: all of this was request line and headers
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._refuse(HEADERS_TOO_LARGE)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            idle = self.cycle is None or self.cycle.response_complete   # not a pipelined request already in
            if idle and not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadline


def _hosted(cfg: Config, log_level: str) -> "HostedEngine":
    """The log opened for writing here, the store in a process of its own (server/host.py)."""
    from ..adapters.registry import open_event_log
    from .host import HostedEngine, StoreHost

    writer = open_event_log(cfg.bus_url, cfg.project_dir)
    store = StoreHost(cfg, writer, log_level)
    try:
        store.start()
    except BaseException:
        writer.close()
        raise
    return HostedEngine(cfg, writer, store)


def serve(cfg: Config, host: str | None = None, port: int | None = None, log_level: str = "warning",
          tls_cert: str | None = None, tls_key: str | None = None) -> None:
    """``tls_cert`` / ``tls_key``: serve HTTPS with this certificate (PEM) and its private key."""
    import uvicorn

    from ..errors import ConfigError

    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("HTTPS needs both --tls-cert and --tls-key")
    for given in (tls_cert, tls_key):
        if given and not Path(given).is_file():
            raise ConfigError(f"no such file: {given}")

    from ..engine import Engine
    from ..errors import ServerUnavailable
    from .app import create_app
    from .host import HostedEngine

    existing = running_server(cfg)
    several = ("several servers need a store that serves many processes (postgresql://) "
               "and store.bus: memory:// (the file event log is one process's)")
    if existing and not existing.get("shared"):
        raise ServerUnavailable(f"a server (pid {existing['pid']}) already serves this project at {existing['url']}; "
                                f"{several}")
    host = host or cfg.server.host
    port = port or cfg.server.port
    engine: Engine | HostedEngine
    if cfg.server.store_process and urlparse(cfg.bus_url).scheme == "file":
        engine = _hosted(cfg, log_level)
        shared = False    # the file event log is one process's
    else:
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
        scheme = "https" if tls_cert else "http"
        write_marker(path, url=f"{scheme}://{host}:{port}", shared=shared,
                     tls_cert=str(Path(tls_cert).resolve()) if tls_cert else None)
    try:
        # An idle kept-alive connection is closed after 5 s, a request's line and
        # headers must arrive within server.header_timeout_s and may not exceed
        # 64 KB, so slow or idle clients cannot pile up sockets until the fd
        # limit (the body has its own timeout, body.py).
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                    http=header_timeout_protocol(cfg.server.header_timeout_s),
                    timeout_keep_alive=5, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                    ssl_certfile=tls_cert, ssl_keyfile=tls_key)
    finally:
        remove_marker(path)
        engine.close()
