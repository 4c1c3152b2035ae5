"""The `personable` command line: thin over the Engine; `--json` everywhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from .config import config_app
from .context import JSON, open_engine as _engine, project_dir as _project
from .models import models_app
from .recommend import recommend_app
from .output import console, emit_json, handle_errors, progress_bar
from .audit import audit_app
from .keys import keys_app
from .erasure import erase as _erase, rekey as _rekey, verify as _verify
from .privacy import privacy_app
from .quality import quality_app
from .resolve import resolve_app
from .segments import segments_app

app = typer.Typer(help="personable: events in, unified profiles out, personalization on top.",
                  no_args_is_help=True, add_completion=False)
profile_app = typer.Typer(help="Unified customer profiles.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")
app.add_typer(quality_app, name="quality")
app.add_typer(resolve_app, name="resolve")
app.add_typer(segments_app, name="segments")
app.add_typer(models_app, name="models")
app.add_typer(recommend_app, name="recommend")
app.add_typer(config_app, name="config")
privacy_app.command("erase")(_erase)
privacy_app.command("verify")(_verify)
privacy_app.command("rekey")(_rekey)
app.add_typer(privacy_app, name="privacy")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")



@app.callback()
def main(ctx: typer.Context,
         project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder (holds personable.yaml).")) -> None:
    # What the CLI and the server create (stores, logs, exports of personal data) is the owner's alone.
    os.umask(0o077)
    ctx.obj = {"project": project}


@app.command()
@handle_errors
def init(ctx: typer.Context, name: Optional[str] = typer.Option(None, help="Project name."),
         force: bool = typer.Option(False, help="Overwrite an existing personable.yaml."), as_json: bool = JSON) -> None:
    """Write a commented personable.yaml starter and the .personable/ state folder."""
    from ..config import load_config, write_starter

    path = write_starter(_project(ctx), name, force)
    cfg = load_config(_project(ctx))
    keys = {source: key for key, source in cfg.write_keys().items()}
    if as_json:
        emit_json({"config": str(path), "write_keys": keys})
        return
    console.print(f"[green]wrote[/] {path}")
    console.print("write keys (kept in .personable/keys.json, never in the YAML):")
    for source, key in keys.items():
        console.print(f"  {source}: [bold]{key}[/]")
    console.print("next: [bold]personable serve[/] or [bold]personable demo[/]")


@app.command()
@handle_errors
def serve(ctx: typer.Context, host: Optional[str] = typer.Option(None, help="Bind address (default from config: 127.0.0.1)."),
          port: Optional[int] = typer.Option(None, help="Port (default from config: 8787)."),
          log_level: str = typer.Option("info", help="uvicorn log level."),
          tls_cert: Optional[str] = typer.Option(None, help="Serve HTTPS with this certificate (PEM file)."),
          tls_key: Optional[str] = typer.Option(None, help="... and this private key (PEM file).")) -> None:
    """Run the HTTP API (Segment-compatible collection, profiles) on this project."""
    from ..config import load_config
    from ..server.run import serve as run

    cfg = load_config(_project(ctx))
    scheme = "https" if tls_cert else "http"
    console.print(f"serving [bold]{cfg.name}[/] on {scheme}://{host or cfg.server.host}:{port or cfg.server.port} "
                  f"(OpenAPI at /docs and /openapi.json)")
    run(cfg, host, port, log_level, tls_cert, tls_key)


def _parse_map(items: list[str]) -> dict[str, str]:
    from ..errors import ImportFailed

    out = {}
    for item in items:
        field, sep, col = item.partition("=")
        if not sep or not field or not col:
            raise ImportFailed(f"--map takes FIELD=COLUMN, got {item!r}")
        out[field.strip()] = col.strip()
    return out


def _print_report(report: Any) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None)
    for key in ("received", "accepted", "duplicates", "quarantined", "profiles_created", "profiles_touched",
                "merges", "refused_links", "refused_collection"):
        t.add_row(key.replace("_", " "), f"{getattr(report, key):,}")
    console.print(t)
    if report.problems:
        console.print(f"[yellow]quarantined records (first {len(report.problems)}); see `personable quarantine`:[/]")
        for p in report.problems[:5]:
            first = p["problems"][0]
            console.print(f"  record {p['record']}: {first['path']}: {first['problem']}")


@app.command()
@handle_errors
def ingest(ctx: typer.Context, path: Path = typer.Argument(..., help="JSONL, CSV or Parquet file."),
           kind: str = typer.Option("events", help="What the file holds: events, crm or orders."),
           file_format: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or parquet (default: from extension)."),
           mapping: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, repeatable; overrides imports.<kind> in personable.yaml."),
           source: str = typer.Option("import", help="Source name recorded on the events."),
           as_json: bool = JSON) -> None:
    """Import a file through the validated write path (bad records go to quarantine)."""
    with _engine(ctx) as engine:
        with progress_bar("ingest", as_json or engine.remote) as progress:
            kw = {"progress": progress} if progress else {}
            report = engine.ingest(path, kind, file_format, _parse_map(mapping), source, **kw)
    if as_json:
        emit_json(report.as_dict())
    else:
        _print_report(report)


@profile_app.command("show")
@handle_errors
def profile_show(ctx: typer.Context, identifier: str = typer.Argument(..., help="Profile id, userId, anonymousId, email:…, phone:…"),
                 events: int = typer.Option(10, help="How many recent events to show."), as_json: bool = JSON) -> None:
    """Show one unified profile: traits, identities, computed traits, consents, recent events."""
    with _engine(ctx) as engine:
        doc = engine.profile(identifier, events)
    if as_json:
        emit_json(doc)
        return
    from .render import render_profile

    render_profile(doc)


@app.command()
@handle_errors
def quarantine(ctx: typer.Context, limit: int = typer.Option(20, help="How many records."),
               offset: int = typer.Option(0, help="Skip this many (newest first)."), as_json: bool = JSON) -> None:
    """List records that failed validation, with the reason."""
    with _engine(ctx) as engine:
        rows = engine.quarantine(limit, offset)
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    t = Table("id", "received", "origin", "record", "problems", "raw")
    for r in rows:
        probs = "; ".join(f"{p['path']}: {p['problem']}" for p in r["problems"])
        t.add_row(str(r["id"]), str(r["received_at"])[:19], str(r["origin"]), str(r["record_no"]), probs,
                  (r["raw"] or "")[:60])
    console.print(t if rows else "[green]quarantine is empty[/]")


# The Engine's stream in the event log (personable.engine.LOG_STREAM, which this
# module must not import: see _quick_stats; tests/test_import_hygiene.py keeps them equal).
LOG_STREAM = "http"


def _quick_stats(project: Path) -> dict[str, Any] | None:
    """The counts straight from the stores, without building the Engine (its
    import is the whole write path: Ibis, ... -- seconds for a status line):
    the running server's, else the offline store's when the event log holds
    nothing it has not stored. None when there is a backlog: the Engine stores
    it on open (after a crash), and then counts."""
    from ..adapters.registry import open_adapter, open_event_log
    from ..ports.eventlog import beyond
    from ..config import load_config
    from ..server.run import running_server

    cfg = load_config(project)
    info = running_server(cfg)
    if info:
        from ..client import RemoteEngine

        remote = RemoteEngine(cfg, info["url"])
        try:
            return remote.stats()
        finally:
            remote.close()
    log = open_event_log(cfg.bus_url, cfg.project_dir)
    try:
        store = open_adapter(cfg.offline_url, cfg.project_dir)
        try:
            if log is not None and beyond(log.end(), store.committed_positions(LOG_STREAM)):
                return None
            return store.stats()  # type: ignore[no-any-return]
        finally:
            store.close()
    finally:
        if log is not None:
            log.close()


@app.command()
@handle_errors
def status(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Counts of events, profiles, identities and quarantined records."""
    stats = _quick_stats(_project(ctx))
    if stats is None:
        with _engine(ctx) as engine:
            stats = engine.stats()
    if as_json:
        emit_json(stats)
        return
    for key, value in stats.items():
        console.print(f"{key.replace('_', ' '):>16}: {value:,}" if isinstance(value, int) else f"{key.replace('_', ' '):>16}: {value}")


@app.command()
@handle_errors
def demo(ctx: typer.Context,
         customers: int = typer.Option(2_000, help="Simulated customers."),
         days: int = typer.Option(60, help="Simulated days of activity."),
         seed: int = typer.Option(7, help="Random seed (same seed, same store)."),
         as_json: bool = JSON) -> None:
    """Simulate an online store, ingest it through the real write path, and summarize the profiles."""
    from ..demo import run_demo

    summary = run_demo(_project(ctx), customers=customers, days=days, seed=seed, quiet=as_json)
    if as_json:
        emit_json(summary)


if __name__ == "__main__":  # pragma: no cover
    app()
