"""`personable models`: train, list, show, evaluate, score, drift."""

from __future__ import annotations

from typing import Optional

import typer

from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors

models_app = typer.Typer(help="Predictive models: train, list, show, evaluate, score, drift, maintain.",
                         no_args_is_help=True)
NAME = typer.Argument(..., help="churn, clv, next_purchase or send_time.")
AS_OF = typer.Option(None, "--as-of", help="Work as of this time (ISO 8601), e.g. to backtest; default: now.")


def _clock(as_of: Optional[str]):
    """A clock stopped at ``--as-of``, or None for now."""
    if not as_of:
        return None
    from datetime import datetime, timezone

    from ..clock import SimulatedClock
    from ..errors import ValidationFailed

    try:
        when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(f"--as-of must be an ISO 8601 time, got {as_of!r}") from exc
    return SimulatedClock(when if when.tzinfo else when.replace(tzinfo=timezone.utc))


def _metrics(m: dict) -> str:
    flat = {k: v for k, v in (m or {}).items() if isinstance(v, (int, float))}
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in flat.items())


@models_app.command()
@handle_errors
def train(ctx: typer.Context, name: str = NAME,
          horizon: Optional[int] = typer.Option(None, help="Days ahead the model looks (default: models.horizon_days)."),
          model: Optional[str] = typer.Option(None, help="lightgbm or logistic (churn); lightgbm or ridge (next_purchase)."),
          as_of: Optional[str] = AS_OF, as_json: bool = JSON) -> None:
    """Train, evaluate on the latest unseen window, and register a new version."""
    with _engine(ctx, _clock(as_of)) as engine:
        result = engine.models.train(name, horizon, model)
    if as_json:
        emit_json(result)
    else:
        console.print(f"[green]{name} v{result['version']}[/] trained on data before {result['train_cutoff'][:10]}: "
                      f"{_metrics(result['metrics'])}")


@models_app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Every registered version."""
    with _engine(ctx) as engine:
        items = engine.models.list()
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table("model", "version", "trained", "window before", "data hash", "metrics", "reason")
    for v in items:
        t.add_row(v["name"], str(v["version"]), v["trained_at"][:19], (v["train_cutoff"] or "")[:10], v["data_hash"] or "",
                  _metrics(v["metrics"])[:80], v["reason"] or "")
    console.print(t if items else "no models yet: `personable models train churn`")


@models_app.command()
@handle_errors
def show(ctx: typer.Context, name: str = NAME, version: Optional[int] = typer.Option(None), as_json: bool = JSON) -> None:
    """One version: window, features, parameters, metrics, recent monitoring."""
    with _engine(ctx) as engine:
        item = engine.models.show(name, version)
    if as_json:
        emit_json(item)
        return
    console.print(f"[bold]{name} v{item['version']}[/] of {item['versions']}, trained {item['trained_at'][:19]}, "
                  f"data hash {item['data_hash']}")
    console.print(f"parameters: {item['params']}")
    console.print(f"metrics: {_metrics(item['metrics'])}")
    for m in item["monitoring"]:
        console.print(f"  {m['checked_at'][:19]} {m['kind']}: " +
                      (", ".join(m["report"].get("drifted", [])) or "no drift" if m["kind"] == "drift"
                       else _metrics(m["report"]["metrics"])))


@models_app.command()
@handle_errors
def evaluate(ctx: typer.Context, name: str = NAME, version: Optional[int] = typer.Option(None),
             as_of: Optional[str] = AS_OF, as_json: bool = JSON) -> None:
    """Judge a version on the latest window whose outcome is known (kept, to show decay)."""
    with _engine(ctx, _clock(as_of)) as engine:
        report = engine.models.evaluate(name, version)
    if as_json:
        emit_json(report)
    else:
        console.print(f"{name} v{report['version']} on the {report['window_days']} days from "
                      f"{report['window_start'][:10]}: {_metrics(report['metrics'])}")


@models_app.command()
@handle_errors
def score(ctx: typer.Context, name: str = NAME, version: Optional[int] = typer.Option(None),
          as_of: Optional[str] = AS_OF, as_json: bool = JSON) -> None:
    """Score every profile; the scores become computed traits (usable in segments)."""
    with _engine(ctx, _clock(as_of)) as engine:
        result = engine.models.score(name, version)
    if as_json:
        emit_json(result)
    else:
        console.print(f"scored {result['scored']:,} profiles with {name} v{result['version']}: "
                      f"{', '.join(result['traits'])} ({result['changed_profiles']:,} changed)")


@models_app.command()
@handle_errors
def drift(ctx: typer.Context, name: str = NAME, version: Optional[int] = typer.Option(None),
          psi: Optional[float] = typer.Option(None, help="PSI above this is drift (default: models.drift.psi)."),
          ks_pvalue: Optional[float] = typer.Option(None, help="A KS p-value below this is drift (default: models.drift.ks_pvalue)."),
          retrain: bool = typer.Option(False, help="Train a new version when something drifted."),
          as_of: Optional[str] = AS_OF, as_json: bool = JSON) -> None:
    """Compare the features a version was trained on with today's (KS and PSI)."""
    from ..predict.drift import DriftThresholds

    with _engine(ctx, _clock(as_of)) as engine:
        default = engine.config.models.drift
        thresholds = DriftThresholds(default.psi if psi is None else psi,
                                     default.ks_pvalue if ks_pvalue is None else ks_pvalue)
        report = engine.models.drift(name, version, thresholds, retrain)
    if as_json:
        emit_json(report)
        return
    for c in report["columns"]:
        if c.get("psi") is not None:
            mark = "[red]drift[/]" if c["drifted"] else "ok"
            console.print(f"{c['column']:>22}  PSI {c['psi']:.3f}  KS {c['ks']:.3f} (p {c['ks_pvalue']:.2g})  {mark}")
    if report.get("retrained"):
        console.print(f"[yellow]retrained:[/] {name} v{report['retrained']}")


@models_app.command()
@handle_errors
def maintain(ctx: typer.Context, as_of: Optional[str] = AS_OF, as_json: bool = JSON) -> None:
    """What `serve` does on schedule for the models under models.maintain (for cron):
    train when due, else evaluate and check drift (retrain on drift), then score."""
    with _engine(ctx, _clock(as_of)) as engine:
        if not engine.config.models.maintain:
            from ..errors import ValidationFailed

            raise ValidationFailed("no models to maintain: list them under models.maintain in personable.yaml")
        done = engine.models.maintain()
    if as_json:
        emit_json(done)
        return
    for item in done:
        if item.get("skipped"):
            console.print(f"[yellow]{item['model']}: skipped[/] ({item['skipped']})")
            continue
        parts = []
        for step in item["steps"]:
            if step["step"] == "train":
                parts.append(f"trained v{step['version']} ({step['reason']})")
            elif step["step"] == "drift":
                parts.append("drift in " + ", ".join(step["drifted"]) if step["drifted"] else "no drift")
            elif step["step"] == "evaluate":
                parts.append(f"evaluated v{step['version']}")
            else:
                parts.append(f"scored {step['scored']:,} profiles")
        console.print(f"{item['model']}: " + "; ".join(parts))
