"""Pick an adapter from a URL scheme (``duckdb:///path``, ``sqlite:///path``,
``redis://host:port/db``, ``postgresql://user@host/db``, later ``kafka://``, ``spark://``), or from a user's
own ``module:Class``. Each factory imports its backend lazily, so a project that
does not use Redis never needs its client installed."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from ..errors import ConfigError

_FACTORIES: dict[str, Callable[[str, Path], Any]] = {}
_INSTALL_HINTS = {
    "redis": "pip install 'personable[redis]'",
    "postgresql": "pip install 'personable[postgres]'",
    "kafka": "pip install 'personable[kafka]'",
    "spark": "pip install 'personable[spark]'",
}


def register(scheme: str, factory: Callable[[str, Path], Any]) -> None:
    _FACTORIES[scheme] = factory


def duckdb_path(url: str, project_dir: Path) -> str | None:
    """``duckdb:///.personable/x.duckdb`` -> a path under the project;
    ``duckdb:////abs/x.duckdb`` -> absolute; ``duckdb://:memory:`` -> in memory."""
    rest = url[len("duckdb://"):]
    if rest in (":memory:", "/:memory:"):
        return None
    if rest.startswith("//"):
        return rest[1:]
    rest = rest.lstrip("/")
    return str((project_dir / rest).resolve())


def _duckdb(url: str, project_dir: Path) -> Any:
    from .duckdb import DuckDBStore

    return DuckDBStore(duckdb_path(url, project_dir))


register("duckdb", _duckdb)


def _file_log(url: str, project_dir: Path) -> Any:
    """``file://.personable/bus``; records encrypted at rest unless ``?encrypted=false``."""
    from .filelog import FileLog

    rest, _, query = url[len("file://"):].partition("?")
    path = Path(rest[1:]) if rest.startswith("//") else project_dir / rest.lstrip("/")
    options = dict(part.partition("=")[::2] for part in query.split("&") if part)
    if options.get("encrypted", "true").lower() not in ("true", "false"):
        raise ConfigError(f"store.bus {url!r}: encrypted must be true or false")
    # The cipher still opens segments sealed before encryption was turned off.
    return FileLog(path, cipher=log_cipher(project_dir), seal=options.get("encrypted", "true").lower() == "true")


def log_cipher(project_dir: Path) -> Any:
    """The event log's cipher, under the project's key-encryption key (``privacy/kek.py``)."""
    from ..config import STATE_DIR
    from ..privacy.kek import project_kek
    from ..privacy.log_cipher import LogCipher

    return LogCipher(lambda: project_kek(project_dir / STATE_DIR))


register("file", _file_log)


def _sqlite(url: str, project_dir: Path) -> Any:
    from .sqlite_online import SQLiteOnlineStore

    rest = url[len("sqlite://"):]
    return SQLiteOnlineStore(Path(rest[1:]) if rest.startswith("//") else project_dir / rest.lstrip("/"))


register("sqlite", _sqlite)


def _redis(url: str, project_dir: Path) -> Any:
    try:
        from .redis_online import RedisOnlineStore
    except ImportError as exc:
        raise ConfigError(f"{url.split('://')[0]}:// URLs need the redis client; install it with "
                          f"{_INSTALL_HINTS['redis']} ({exc})") from exc
    return RedisOnlineStore(url)


register("redis", _redis)
register("rediss", _redis)  # Redis over TLS


def _postgres(url: str, project_dir: Path) -> Any:
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise ConfigError(f"postgresql:// URLs need psycopg; install it with {_INSTALL_HINTS['postgresql']} ({exc})") from exc
    return PostgresStore(url)


register("postgresql", _postgres)
register("postgres", _postgres)


def open_event_log(url: str, project_dir: Path) -> Any:
    """The durable event log, or None for ``memory://`` (write straight to the store)."""
    if url.startswith("memory://"):
        return None
    return open_adapter(url, project_dir)


def open_adapter(url: str, project_dir: Path) -> Any:
    if ":" in url and "://" not in url:
        module, _, cls = url.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)(project_dir)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load adapter class {url!r}: {exc}") from exc
    scheme = urlparse(url).scheme
    if scheme not in _FACTORIES:
        hint = _INSTALL_HINTS.get(scheme)
        extra = f"; install it with {hint}" if hint else ""
        raise ConfigError(f"no adapter for {scheme!r} URLs ({url}){extra}; known: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[scheme](url, project_dir)
