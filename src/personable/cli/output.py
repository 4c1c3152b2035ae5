"""Printing for the CLI: rich for people, JSON for machines, one error shape."""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import orjson
import typer
from rich.console import Console

from ..errors import PersonableError

console = Console()
err_console = Console(stderr=True)

# Exit codes mean something: 2 bad input or config, 3 not found, 4 server or store
# unavailable (or a server owns the project and the command needs its files).
EXIT_BY_STATUS = {400: 2, 401: 2, 403: 2, 413: 2, 415: 2, 404: 3, 409: 4, 503: 4}


def emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PersonableError as exc:
            if kwargs.get("as_json"):
                emit_json(exc.as_dict())
            else:
                err_console.print(f"[bold red]error[/] ({exc.code}): {exc.message}")
                for d in exc.details[:30]:
                    err_console.print(f"  [yellow]{d.path}[/]: {d.problem}")
            raise typer.Exit(EXIT_BY_STATUS.get(exc.status, 1)) from exc
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]; every committed chunk is kept, nothing half-written")
            raise typer.Exit(130) from None

    return wrapper


@contextmanager
def progress_bar(label: str, quiet: bool = False) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a bar, or None when quiet (--json)."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
