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
        try:
            if not engine.remote:      # through a server, the server records the calls it answers
                _audit(ctx, engine)
        finally:
            engine.close()


PERSONAL_PARAMS = frozenset({"identifiers", "values"})


def _audit(ctx: typer.Context, engine: Any) -> None:
    """The command, as an audit record of the project's own log (privacy/audit.py)."""
    import getpass

    # Who an erasure or a verification names must not outlive it in the log: only how many.
    params = {k: (f"{len(v)} given" if k in PERSONAL_PARAMS else str(v)) for k, v in ctx.params.items()
              if v not in (None, False, [], ()) and k != "as_json"}
    target = next((str(ctx.params[k]) for k in ("identifier", "segment_id", "name", "user_id", "key_id", "path")
                   if ctx.params.get(k)), None)
    engine.audit.record(f"cli:{getpass.getuser()}", ctx.command_path.partition(" ")[2] or ctx.command_path, target,
                        details={"params": params} if params else None)
