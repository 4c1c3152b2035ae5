"""`personable privacy`: a profile's consent (show it, grant or withdraw), the refusals."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from ..errors import ValidationFailed
from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors

privacy_app = typer.Typer(help="Privacy: consent per purpose, and what the consent policy refused.",
                          no_args_is_help=True)

YES, NO = ("yes", "true", "1", "grant", "granted"), ("no", "false", "0", "deny", "denied", "withdraw")


def _changes(items: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for item in items:
        purpose, sep, value = item.partition("=")
        if not sep or not purpose.strip() or value.strip().lower() not in YES + NO:
            raise ValidationFailed(f"{item!r}: write PURPOSE=yes or PURPOSE=no")
        out[purpose.strip()] = value.strip().lower() in YES
    return out


@privacy_app.command()
@handle_errors
def consent(ctx: typer.Context, identifier: str,
            changes: Optional[list[str]] = typer.Argument(None, help="PURPOSE=yes|no to record; none: just show."),
            source: str = typer.Option("cli", help="Who records the change (kept with it)."),
            policy_version: Optional[str] = typer.Option(None, help="The policy the person agreed to "
                                                                     "(default: privacy.policy_version)."),
            as_json: bool = JSON) -> None:
    """A profile's consents and the policy's verdict per purpose; with PURPOSE=yes|no, record a change first."""
    parsed = _changes(changes or [])
    with _engine(ctx) as engine:
        result = (engine.privacy.set_consent(identifier, parsed, source, policy_version) if parsed
                  else engine.privacy.consent(identifier))
    if as_json:
        emit_json(result)
        return
    from rich.table import Table

    t = Table("purpose", "allowed", "why", "region")
    for purpose, v in result["verdicts"].items():
        t.add_row(purpose, "yes" if v["allowed"] else "[red]no[/]", v["reason"], v["region"])
    console.print(f"[bold]{result['profile_id']}[/] (policy {result['policy_version']})")
    console.print(t)
    for h in result["history"][:10]:
        console.print(f"  {h['observed_at'][:19]}  {h['purpose']}={'yes' if h['granted'] else 'no'}  "
                      f"via {h['via'] or '?'} from {h['source'] or '?'} (policy {h['policy_version'] or '?'})")


@privacy_app.command()
@handle_errors
def refusals(ctx: typer.Context,
             since: Optional[datetime] = typer.Option(None, help="Only refusals since then (ISO 8601)."),
             as_json: bool = JSON) -> None:
    """How many uses the consent policy refused, by use, purpose and reason."""
    with _engine(ctx) as engine:
        items = engine.privacy.refusal_counts(since)
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table("use", "purpose", "reason", "refused")
    for r in items:
        t.add_row(r["use"], r["purpose"], r["reason"], f"{r['count']:,}")
    console.print(t if items else "no refusals recorded")


@privacy_app.command()
@handle_errors
def export(ctx: typer.Context, identifier: str,
           out: Path = typer.Option(..., "--out", help="Folder to write profile.json and events.csv into."),
           as_json: bool = JSON) -> None:
    """Everything held about a person (GDPR Art. 15 / 20): profile.json (traits, identities, consents, segments,
    computed traits and scores with their meaning, every processing) and events.csv."""
    with _engine(ctx) as engine:
        bundle = engine.privacy.export(identifier)
        events = engine.privacy.export_events(identifier)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(bundle, indent=2, default=str) + "\n")
    (out / "events.csv").write_text(events)
    written = {"profile_id": bundle["profile_id"], "folder": str(out), "files": ["profile.json", "events.csv"],
               "events": bundle["events"], "processing": len(bundle["processing"])}
    if as_json:
        emit_json(written)
        return
    console.print(f"wrote {out}/profile.json and {out}/events.csv ({bundle['events']:,} events, "
                  f"{len(bundle['processing']):,} processing records)")


@privacy_app.command()
@handle_errors
def retention(ctx: typer.Context, dry_run: bool = typer.Option(False, help="Count what would go; change nothing."),
              as_json: bool = JSON) -> None:
    """Expire what privacy.retention says has been kept long enough (`personable serve` runs it daily)."""
    with _engine(ctx) as engine:
        report = engine.privacy.retention(dry_run)
    if as_json:
        emit_json(report)
        return
    verb = "would expire" if dry_run else ("anonymized" if report["mode"] == "anonymize" else "deleted")
    for rule, n in report["events"].items():
        console.print(f"events ({rule}): {verb} {n:,}")
    for table, n in report["tables"].items():
        console.print(f"{table}: {'would delete' if dry_run else 'deleted'} {n:,}")
    if not report["events"] and not report["tables"]:
        console.print("no retention configured (privacy.retention in personable.yaml)")


@privacy_app.command()
@handle_errors
def release(ctx: typer.Context, report: str = typer.Argument(..., help="segment_sizes or event_counts."),
            epsilon: float = typer.Option(..., help="The privacy loss to spend (from privacy.dp.budget)."),
            k: Optional[int] = typer.Option(None, help="Suppress cells below this (default privacy.dp.k)."),
            as_json: bool = JSON) -> None:
    """A report that may leave the project: counts with differential privacy, small cells suppressed."""
    with _engine(ctx) as engine:
        result = engine.privacy.release(report, epsilon, k)
    if as_json:
        emit_json(result)
        return
    for cell, value in result["cells"].items():
        console.print(f"  {cell}: {'suppressed' if value is None else f'{value:,}'}")
    b = result["budget"]
    console.print(f"ε spent {result['epsilon']:g}; budget {b['left']:g} of {b['total']:g} left")


@privacy_app.command()
@handle_errors
def budget(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The project's ε budget: total, spent, left, and every release that spent it."""
    with _engine(ctx) as engine:
        state = engine.privacy.budget()
    if as_json:
        emit_json(state)
        return
    console.print(f"ε budget: {state['left']:g} of {state['total']:g} left ({state['spent']:g} spent)")
    for r in state["ledger"][-20:]:
        console.print(f"  {r['spent_at'][:19]}  {r['release']}  ε={r['epsilon']:g}  {r['detail'] or ''}")
