"""`personable config`: the JSON Schema of personable.yaml, and a check of the
project's file that names every problem with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .context import JSON, project_dir
from .output import console, emit_json, handle_errors

config_app = typer.Typer(help="personable.yaml: its JSON Schema, and a check of the project's file.",
                         no_args_is_help=True)


@config_app.command("schema")
@handle_errors
def schema(output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the schema to FILE."),
           as_json: bool = JSON) -> None:
    """Print the JSON Schema of personable.yaml (JSON is its only form; point an editor at it,
    see docs/configuration.md)."""
    import json

    from ..config import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    if as_json:
        emit_json({"schema": str(output)})
    else:
        console.print(f"[green]wrote[/] {output}")


@config_app.command("check")
@handle_errors
def check(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Validate the project's personable.yaml, with its PERSONABLE_* overrides applied;
    every problem is printed with its path (exit code 2 when invalid)."""
    from ..config import CONFIG_FILE, load_config

    cfg = load_config(project_dir(ctx))
    path = cfg.project_dir / CONFIG_FILE
    summary = {"valid": True, "config": str(path), "name": cfg.name, "sources": cfg.sources,
               "segments": len(cfg.segments), "quality_fields": len(cfg.quality.fields)}
    if as_json:
        emit_json(summary)
        return
    console.print(f"[green]valid[/]: {path} ({len(cfg.segments)} segments, {len(cfg.quality.fields)} quality "
                  f"fields, sources {', '.join(cfg.sources)})")
