"""What every CLI command shares: the project folder and its engine."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import typer

if TYPE_CHECKING:
    from ..api import PersonableAPI

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def project_dir(ctx: typer.Context) -> Path:
    return ctx.obj["project"]


@contextmanager
def open_engine(ctx: typer.Context, clock: Any = None) -> Iterator["PersonableAPI"]:
    """The project: the Engine on its files, or the running server's API (see
    personable.client); both are a PersonableAPI. ``clock``: the time it works
    at (``--as-of``), injected when the Engine is built."""
    from ..client import open_project

    engine = open_project(project_dir(ctx), clock)
    try:
        yield engine
    finally:
        engine.close()
