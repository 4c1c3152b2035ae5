"""personable: a self-hosted, data-driven personalization engine for customer journeys."""

from __future__ import annotations

from .errors import PersonableError

__version__ = "0.1.0"
__all__ = ["Engine", "PersonableError", "Config", "load_config", "__version__"]


def __getattr__(name: str):
    # Lazy so that `personable --help` does not import DuckDB, FastAPI, ...
    if name == "Engine":
        from .engine import Engine
        return Engine
    if name in ("Config", "load_config"):
        from . import config
        return getattr(config, name)
    raise AttributeError(name)
