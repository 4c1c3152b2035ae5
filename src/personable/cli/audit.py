"""`personable audit`: who read or changed what (`log`), and whether the log is intact (`verify`)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import typer

from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors

audit_app = typer.Typer(help="The tamper-evident audit log: who read or changed what, and its verification.",
                        no_args_is_help=True)


@audit_app.command()
@handle_errors
def verify(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Walk the chain and its signed checkpoints; exit 1 when anything was changed, removed or reordered."""
    with _engine(ctx) as engine:
        report = engine.audit.verify()
    if as_json:
        emit_json(report)
    elif report["ok"]:
        console.print(f"[green]intact[/]: {report['records']:,} records, {report['checkpoints']:,} signed checkpoints")
    else:
        console.print(f"[bold red]tampered[/]: {len(report['problems'])} problem(s) in {report['records']:,} records")
        for p in report["problems"][:20]:
            console.print(f"  {p}")
    if not report["ok"]:
        raise typer.Exit(1)


@audit_app.command("log")
@handle_errors
def log_(ctx: typer.Context, who: Optional[str] = typer.Option(None, help="Actor: a key id, admin, cli:<user>."),
         what: Optional[str] = typer.Option(None, help="Action: a route's name (get_profile, export_segment, ...) "
                                                       "or a CLI command (profile show)."),
         target: Optional[str] = typer.Option(None, help="What it was done to (an identifier, a segment, ...)."),
         since: Optional[datetime] = typer.Option(None, help="Only records since then (ISO 8601, UTC)."),
         limit: int = typer.Option(50), as_json: bool = JSON) -> None:
    """Audit records, newest first: e.g. `--target alice` answers "who read this person's data"."""
    from datetime import timezone

    when = since.replace(tzinfo=timezone.utc) if since is not None and since.tzinfo is None else since
    with _engine(ctx) as engine:
        items = engine.audit.query(who, what, target, when, limit)
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table("seq", "at", "who", "what", "target", "outcome")
    for r in items:
        t.add_row(str(r["seq"]), r["at"][:19], r["actor"], r["action"], r["target"] or "", r["outcome"])
    console.print(t if items else "no audit records match")
