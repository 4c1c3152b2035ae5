"""`personable quality`: the data-quality report, its history, and the jobs
that clean and complete what is stored."""

from __future__ import annotations

from typing import Any, Optional

import typer

from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors

quality_app = typer.Typer(help="Data quality: report (default), history, clean, impute.", invoke_without_command=True)



def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def render_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table("field", "source", "records", "observed", "complete", "valid", "unique", "fresh", "problems",
              title=f"data quality, {report['profiles']:,} profiles ({report['run_at'][:19]})")
    for row in report["fields"]:
        t.add_row(row["field"], row["source"], f"{row['records']:,}", f"{row['observed']:,}", _pct(row["completeness"]),
                  _pct(row["validity"]), _pct(row["uniqueness"]), _pct(row.get("freshness")),
                  "; ".join(row["problems"]) or "[green]ok[/]")
    console.print(t)
    money = report.get("revenue") or {}
    if money.get("without_rate"):
        console.print(f"[yellow]{money['without_rate']:,} amounts in a currency without a rate[/] "
                      "(quality.currency_rates); they are left out of revenue")
    for q in report.get("quarantine") or []:
        console.print(f"quarantined: {q['records']:,} record(s) at [bold]{q['path']}[/]: {q['typical_problem']}")
    for r in report.get("regressions") or []:
        console.print(f"[red]regression[/] {r['field']} ({r['source']}): {r['metric']} "
                      f"{_pct(r['before'])} -> {_pct(r['now'])} since {report.get('previous_run_at', '')[:19]}")


@quality_app.callback()
@handle_errors
def report(ctx: typer.Context, field: list[str] = typer.Option([], "--field", help="Only these fields (repeatable)."),
           save: bool = typer.Option(True, help="Keep the report in the history."), as_json: bool = JSON) -> None:
    """The report: completeness, validity, uniqueness and freshness per field and source."""
    if ctx.invoked_subcommand is not None:
        return
    with _engine(ctx) as engine:
        result = engine.quality.report(field or None, save)
    if as_json:
        emit_json(result)
    else:
        render_report(result)


@quality_app.command()
@handle_errors
def history(ctx: typer.Context, limit: int = typer.Option(10, help="How many reports."), as_json: bool = JSON) -> None:
    """Past reports, newest first, with their headline numbers."""
    with _engine(ctx) as engine:
        items = engine.quality.history(limit)
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table("id", "run at", "profiles", "fields with problems", "regressions")
    for r in items:
        t.add_row(str(r["id"]), r["run_at"][:19], f"{r['profiles']:,}",
                  str(sum(1 for f in r["fields"] if f["problems"] and f["source"] == "*")), str(len(r.get("regressions", []))))
    console.print(t)


@quality_app.command()
@handle_errors
def clean(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Re-standardize every stored trait (and amount) with the current settings."""
    with _engine(ctx) as engine:
        result = engine.quality.clean()
    if as_json:
        emit_json(result)
        return
    for f in result["fields"]:
        console.print(f"{f['field']}: {f['values']:,} distinct values, {f['changed_profiles']:,} profiles changed {f['records']}")
    console.print(f"revenue recomputed for {result['revenue_changed_profiles']:,} profiles")


@quality_app.command()
@handle_errors
def impute(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Fill missing values by each field's `missing:` policy (marked as imputed)."""
    with _engine(ctx) as engine:
        result = engine.quality.impute()
    if as_json:
        emit_json(result)
        return
    for f in result["fields"] or [{"field": "(none)", "policy": "no field has a missing: policy", "filled": 0}]:
        console.print(f"{f['field']}: {f['policy']}, filled {f['filled']:,}" + (f" ({f['note']})" if f.get("note") else ""))
