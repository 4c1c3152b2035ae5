"""The store process of ``personable serve``, and the HTTP process's handle on it.

With ``server.store_process: true`` and the file event log, ``personable
serve`` runs as two processes. The one answering HTTP validates events and appends them to the
log: the collection path needs nothing else. The store process opens the
Engine on the project, runs the log worker, the scheduler and the realtime
segment flusher (:class:`~.background.Background`), and answers every other
call the routes make (profiles, segments, models, ...) over a Unix socket with
an authenticated connection (``multiprocessing.connection``).

Why two: in one process the worker's Python work (stitching, documents,
Arrow conversions) holds the interpreter lock while requests wait for it, and
a crashed store takes collection with it. The default: on 2 cores it halved
/v1/track's p99 or better (docs/benchmarks.md, "Fifth session").

The store process reads the log only up to the end the HTTP process announces
after each fsync (:class:`~..adapters.filelog.FollowedLog`). It ignores SIGINT
and SIGTERM, which reach the whole process group: it stops when the HTTP
process tells it to, after the last events are in the log, or when the HTTP
process is gone. If it dies, the HTTP process starts a new one; calls in the
meantime answer 503.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import tempfile
import threading
import time
from multiprocessing import get_context
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from queue import Empty, LifoQueue
from typing import Any, Mapping

from ..adapters.filelog import FileLog, FollowedLog
from ..clock import SystemClock
from ..config import Config
from ..engine import Accepted, log_record
from ..errors import PersonableError, StoreError, error_from_dict

log = logging.getLogger("personable.server")

Path_ = tuple[str, ...]
START_TIMEOUT_S = 600.0    # opening the store replays whatever the log holds beyond it: may be long
STOP_TIMEOUT_S = 600.0     # stopping stores every accepted event first


# -- the store process ---------------------------------------------------------------

def _host_main(project_dir: str, log_dir: str, end: dict[int, int], address: str, authkey: bytes,
               parent: Connection, log_level: str, nice: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: [store] %(message)s")
    if nice:
        os.nice(nice)
    try:
        from ..config import load_config
        from ..engine import Engine
        from .background import Background
        from .run import STORE_MARKER, marker_path, remove_marker, write_marker

        config = load_config(project_dir)
        marker = marker_path(config, STORE_MARKER)
        from ..adapters.registry import log_cipher

        # Encrypted segments carry their wrapped keys: a follower opens them with the project's key.
        followed = FollowedLog(log_dir, end, cipher=log_cipher(config.project_dir))
        engine = Engine(config, event_log=followed)
        write_marker(marker)
        background = Background(engine)
        background.start()
        listener = Listener(address, "AF_UNIX", authkey=authkey)
    except PersonableError as exc:
        parent.send(("error", exc.as_dict()["error"], exc.status))
        return
    except Exception as exc:
        log.exception("the store process could not start")
        parent.send(("crash", f"{type(exc).__name__}: {exc}"))
        return
    host = _Host(engine, background, followed, listener)
    parent.send(("ready",))
    threading.Thread(target=host.watch, args=(parent,), name="personable-parent-watch", daemon=True).start()
    try:
        host.serve()
    finally:
        remove_marker(marker)


class _Host:
    def __init__(self, engine: Any, background: Any, followed: FollowedLog, listener: Listener):
        self.root = {"engine": engine, "background": background}
        self.engine, self.background, self.followed, self.listener = engine, background, followed, listener
        self._stopping = threading.Lock()
        self._stopped = threading.Event()
        self._done = threading.Event()    # stopped, and the stop answered: the process may end

    def serve(self) -> None:
        """Answer connections until stopped. Accepting runs on a daemon thread:
        closing a listener does not wake a thread blocked in its accept()."""
        threading.Thread(target=self._accept, name="personable-store-accept", daemon=True).start()
        self._done.wait()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn = self.listener.accept()
            except OSError:     # closed by stop()
                return
            except Exception:   # a connection that failed authentication
                log.warning("refused a connection to the store process", exc_info=True)
                continue
            threading.Thread(target=self._answer, args=(conn,), name="personable-store-call", daemon=True).start()

    def watch(self, parent: Connection) -> None:
        """Stop when the HTTP process is gone (its end of the pipe closes)."""
        try:
            parent.recv()
        except (EOFError, OSError):
            pass
        if not self._stopped.is_set():
            log.warning("the HTTP process is gone; storing what it accepted, then stopping")
        self.stop(None)
        self._done.set()

    def stop(self, end: Mapping[int, int] | None) -> None:
        with self._stopping:
            if self._stopped.is_set():
                return
            if end is not None:
                self.followed.announce(end)
            try:
                self.background.stop()     # stores every announced event first
            finally:
                self.engine.close()
                self._stopped.set()
                self.listener.close()

    def _resolve(self, path: Path_) -> Any:
        if not path or path[0] not in self.root or any(p.startswith("_") for p in path):
            raise StoreError(f"the store process has no call {'.'.join(path)!r}")
        target = self.root[path[0]]
        for name in path[1:]:
            target = getattr(target, name)
        return target

    def _answer(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return
                if message[0] == "announce":
                    self.followed.announce(message[1])
                    continue
                if message[0] == "stop":
                    try:
                        self.stop(message[1])
                        conn.send(("ok", None))
                    finally:
                        self._done.set()
                    return
                _, path, args, kwargs = message
                try:
                    reply: tuple[Any, ...] = ("ok", self._resolve(path)(*args, **kwargs))
                except PersonableError as exc:
                    reply = ("error", exc.as_dict()["error"], exc.status)
                except Exception as exc:
                    log.exception("%s failed in the store process", ".".join(path))
                    reply = ("crash", f"{type(exc).__name__}: {exc}")
                try:
                    conn.send(reply)
                except Exception as exc:   # the answer does not pickle: say so rather than hang the caller
                    log.exception("the answer to %s could not be sent", ".".join(path))
                    conn.send(("crash", f"the answer to {'.'.join(path)} could not be sent: {exc}"))


# -- the HTTP process's side -----------------------------------------------------------

class StoreProcessError(RuntimeError):
    """Something unexpected failed in the store process (its log has the traceback)."""


class StoreHost:
    """Starts the store process, calls it, and starts a new one if it dies."""

    def __init__(self, config: Config, writer: FileLog, log_level: str = "warning"):
        self.config, self.writer, self.log_level = config, writer, log_level
        self._dir = tempfile.mkdtemp(prefix="personable-")   # a Unix socket path must stay short
        self._address = str(Path(self._dir) / "store.sock")
        self._authkey = secrets.token_bytes(32)
        self._pool: LifoQueue[Connection] = LifoQueue()
        self._announcer: Connection | None = None
        self._announce_lock = threading.Lock()
        self._generation = 0
        self._stopping = False
        self._proc: Any = None
        self._parent: Connection | None = None
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    # lifecycle
    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="personable-store-supervisor", daemon=True)
        self._supervisor.start()

    def _spawn(self) -> None:
        ctx = get_context("spawn")
        ours, theirs = ctx.Pipe()
        Path(self._address).unlink(missing_ok=True)
        proc = ctx.Process(target=_host_main, name="personable-store", daemon=False,
                           args=(str(self.config.project_dir), str(self.writer.dir), self.writer.end(),
                                 self._address, self._authkey, theirs, self.log_level, self.config.server.store_nice))
        proc.start()
        theirs.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ours.poll(0.2):
            if not proc.is_alive() or time.monotonic() > deadline:
                proc.kill()
                raise StoreError(f"the store process did not start (exit code {proc.exitcode}); see the log above")
        try:
            status = ours.recv()
        except EOFError:
            proc.join()
            raise StoreError(f"the store process exited while starting (exit code {proc.exitcode})") from None
        if status[0] == "error":
            proc.join()
            raise error_from_dict(status[1], status[2])
        if status[0] == "crash":
            proc.join()
            raise StoreError(f"the store process could not start: {status[1]}")
        self._proc, self._parent = proc, ours
        self._generation += 1
        self._drain_pool()
        with self._announce_lock:
            self._announcer = Client(self._address, "AF_UNIX", authkey=self._authkey)
        # What was appended while it started (a restart under traffic) is announced now, not at the next append.
        self.announce(self.writer.end())

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping:
            self._proc.join()
            if self._stopping:
                return
            log.error("the store process exited (code %s); starting a new one in %.0f s",
                      self._proc.exitcode, backoff)
            time.sleep(backoff)
            try:
                self._spawn()
                self.restarts += 1
                backoff = 1.0
            except PersonableError:
                log.exception("could not start a new store process")
                backoff = min(30.0, backoff * 2)

    def stop(self) -> None:
        """Tell the store process to store everything in the log and stop; wait for it."""
        self._stopping = True
        if self._proc is None:
            return
        try:
            conn = Client(self._address, "AF_UNIX", authkey=self._authkey)
            with conn:
                conn.send(("stop", self.writer.end()))
                if conn.poll(STOP_TIMEOUT_S):
                    conn.recv()
        except (OSError, EOFError):
            log.warning("the store process was not there to stop")
        self._proc.join(timeout=STOP_TIMEOUT_S)
        if self._proc.is_alive():
            log.error("the store process did not stop; killing it (what it had not stored stays in the log)")
            self._proc.kill()
            self._proc.join()
        self._drain_pool()
        if self._parent is not None:
            self._parent.close()
        Path(self._address).unlink(missing_ok=True)
        os.rmdir(self._dir)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # calls
    def announce(self, end: Mapping[int, int]) -> None:
        """The log is durable up to ``end``. A store process that misses it (it is
        being restarted) starts from the log's end anyway."""
        with self._announce_lock:
            if self._announcer is None:
                return
            try:
                self._announcer.send(("announce", dict(end)))
            except OSError:
                self._announcer = None

    def call(self, path: Path_, *args: Any, **kwargs: Any) -> Any:
        generation = self._generation
        try:
            conn = self._pool.get_nowait()
        except Empty:
            try:
                conn = Client(self._address, "AF_UNIX", authkey=self._authkey)
            except OSError as exc:
                raise StoreError("the store process is not running (it is being restarted); retry") from exc
        try:
            conn.send(("call", path, args, kwargs))
            reply = conn.recv()
        except (EOFError, OSError) as exc:
            conn.close()
            raise StoreError("the store process stopped while answering; retry") from exc
        if generation == self._generation:
            self._pool.put(conn)
        else:
            conn.close()
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            raise error_from_dict(reply[1], reply[2])
        raise StoreProcessError(reply[1])

    def _drain_pool(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except Empty:
                return


class _Remote:
    """An attribute path on the store process's Engine; calling it calls it there."""

    __slots__ = ("_host", "_path")

    def __init__(self, host: StoreHost, path: Path_):
        self._host, self._path = host, path

    def __getattr__(self, name: str) -> "_Remote":
        if name.startswith("_"):
            raise AttributeError(name)
        return _Remote(self._host, (*self._path, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._host.call(self._path, *args, **kwargs)


class HostedEngine:
    """What the routes use as their Engine in the HTTP process: collection
    appends to the log here; every other call goes to the store process."""

    def __init__(self, config: Config, writer: FileLog, host: StoreHost):
        self.config, self.log, self.host = config, writer, host
        self.clock = SystemClock()

    def accept(self, items: list[Accepted]) -> dict[int, int]:
        end = self.log.append([log_record(*item) for item in items])
        self.host.announce(end)
        return end

    def wait_processed(self, positions: Mapping[int, int] | None = None, timeout: float = 30.0) -> bool:
        # Up to what this process acknowledged: the store process may not have read the announcement yet.
        self.host.announce(self.log.end())
        return bool(self.host.call(("engine", "wait_processed"), dict(positions or self.log.end()), timeout))

    def health(self) -> dict[str, Any]:
        return dict(self.host.call(("background", "health")), store_restarts=self.host.restarts,
                    store_pid=self.host.pid)

    def __getattr__(self, name: str) -> _Remote:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Remote(self.host, ("engine", name))

    def close(self) -> None:
        self.host.stop()
        self.log.close()
