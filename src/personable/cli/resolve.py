"""`personable resolve`: probabilistic identity resolution and its review queue."""

from __future__ import annotations

from typing import Any

import typer

from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors

resolve_app = typer.Typer(help="Probabilistic identity resolution: run (default), review, accept, reject, explain, undo.",
                          invoke_without_command=True)
ACTOR = typer.Option("cli", "--actor", help="Who decides (kept in the audit trail).")



def _explanation(items: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['comparison']} {e['match_weight']:+.1f} ({e['left']} | {e['right']})" for e in items)


@resolve_app.callback()
@handle_errors
def run(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Score every pair of profiles that might be one person; merge the sure ones,
    queue the borderline ones for review."""
    if ctx.invoked_subcommand is not None:
        return
    with _engine(ctx) as engine:
        if as_json or engine.remote:
            summary = engine.resolution.run()
        else:
            with console.status("resolving identities") as status:
                summary = engine.resolution.run(progress=lambda msg: status.update(msg))
    if as_json:
        emit_json(summary)
        return
    console.print(f"{summary['records']:,} person records, {summary['pairs_scored']:,} candidate pairs scored "
                  f"in {summary['seconds']} s")
    console.print(f"[green]merged {summary['merged_profiles']:,} profiles[/]; "
                  f"{summary['review']:,} pairs wait for review (`personable resolve review`)")
    for v in summary["blocked"]["values"][:10]:
        console.print(f"[yellow]not used as evidence[/] {v['field']} {v['value']!r}: {v['reason']}")
    for c in summary["blocked"]["clusters"][:10]:
        console.print(f"[yellow]blocked[/] {c['reason']}")


@resolve_app.command()
@handle_errors
def review(ctx: typer.Context, status: str = typer.Option("review", help="review, merged, accepted, rejected, blocked, undone or all."),
           limit: int = typer.Option(20), offset: int = typer.Option(0), as_json: bool = JSON) -> None:
    """Pairs waiting for a decision (or any status), most likely first."""
    with _engine(ctx) as engine:
        items = engine.resolution.review(status, limit, offset)
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table("left", "right", "p(match)", "weight", "status", "why")
    for p in items:
        t.add_row(p["left_profile"], p["right_profile"], f"{p['match_probability']:.3f}", f"{p['match_weight']:.1f}",
                  p["status"] + (f" ({p['reason']})" if p.get("reason") else ""), _explanation(p["explanation"]))
    console.print(t if items else f"[green]no pairs with status {status}[/]")
    if items and status == "review":
        console.print("decide with `personable resolve accept LEFT RIGHT` or `personable resolve reject LEFT RIGHT`")


def _decide(ctx: typer.Context, left: str, right: str, accept: bool, actor: str, as_json: bool) -> None:
    with _engine(ctx) as engine:
        result = engine.resolution.decide(left, right, accept, actor)
    if as_json:
        emit_json(result)
    else:
        console.print(f"{'merged into ' + result['profile'] if accept else 'kept apart'}: {left} / {right}")


@resolve_app.command()
@handle_errors
def accept(ctx: typer.Context, left: str, right: str, actor: str = ACTOR, as_json: bool = JSON) -> None:
    """Accept a pair: the two profiles become one person."""
    _decide(ctx, left, right, True, actor, as_json)


@resolve_app.command()
@handle_errors
def reject(ctx: typer.Context, left: str, right: str, actor: str = ACTOR, as_json: bool = JSON) -> None:
    """Reject a pair: they are never merged automatically."""
    _decide(ctx, left, right, False, actor, as_json)


@resolve_app.command()
@handle_errors
def explain(ctx: typer.Context, identifier: str, as_json: bool = JSON) -> None:
    """Why a profile holds what it holds: its merges and their match weights."""
    with _engine(ctx) as engine:
        result = engine.resolution.explain(identifier)
    if as_json:
        emit_json(result)
        return
    console.print(f"profile [bold]{result['profile_id']}[/]")
    for link in result["links"]:
        console.print(f"  {link['status']} {link['left_profile']} + {link['right_profile']}: "
                      f"p={link['match_probability']:.4f}, weight {link['match_weight']:.1f}")
        for e in link["explanation"]:
            console.print(f"    {e['comparison']:>12} {e['match_weight']:+6.2f}  {e['level']}  ({e['left']} | {e['right']})")
    if not result["links"]:
        console.print("  no probabilistic merges")
    for p in result["pending_review"]:
        console.print(f"  waiting for review: {p['left_profile']} / {p['right_profile']} p={p['match_probability']:.3f}")


@resolve_app.command()
@handle_errors
def undo(ctx: typer.Context, profile: str = typer.Argument(..., help="Id of the profile that was merged away."),
         actor: str = ACTOR, as_json: bool = JSON) -> None:
    """Undo a probabilistic merge: split the profile back out and keep the pair apart."""
    with _engine(ctx) as engine:
        result = engine.resolution.undo(profile, actor)
    if as_json:
        emit_json(result)
    else:
        console.print(f"split {result['from_profile']} back out of {result['into_profile']}; "
                      f"rebuilt {', '.join(result['rebuilt'])}")
