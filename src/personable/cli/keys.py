"""`personable keys`: API keys with scopes (create, list, revoke) and user tokens.

They work on the project's files (``.personable/api_keys.json``), with or
without a running server: a server rereads the file when it changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from .context import JSON, project_dir as _project
from .output import console, emit_json, handle_errors

if TYPE_CHECKING:
    from ..access.keys import KeyRing
    from ..config import Config

keys_app = typer.Typer(help="API keys with scopes (publishable, secret), and user tokens for a page's own reads.",
                       no_args_is_help=True)


def _ring(ctx: typer.Context) -> tuple["Config", "KeyRing"]:
    from ..access.keys import KeyRing
    from ..config import load_config

    cfg = load_config(_project(ctx))
    return cfg, KeyRing(cfg.state_dir)


@keys_app.command()
@handle_errors
def create(ctx: typer.Context, name: str = typer.Argument(..., help="What the key is for (shown in lists)."),
           kind: str = typer.Option("secret", help="secret (server to server, with scopes) or publishable "
                                                   "(safe in a web page: collects, reads its visitor's own data)."),
           scope: list[str] = typer.Option([], "--scope", help="Repeatable: profiles:read, segments:*, admin, "
                                                               "collect, ... (secret keys; docs/security.md)."),
           source: Optional[str] = typer.Option(None, help="The source its events are attributed to "
                                                           "(default: web for publishable keys, server else)."),
           rate_limit: float = typer.Option(0.0, help="Requests per second (0: unlimited); over it: 429."),
           as_json: bool = JSON) -> None:
    """Make a key. Its text is shown once, now: only its hash is kept."""
    _, ring = _ring(ctx)
    key, plain = ring.create(kind, name, scope, source, rate_limit)
    if as_json:
        emit_json({**key.public(), "key": plain})
        return
    console.print(f"[bold]{key.key_id}[/] ({key.kind}, scopes: {', '.join(key.scopes)})")
    console.print(f"  {plain}")
    console.print("[yellow]shown once: store it now (only its hash is kept)[/]")


@keys_app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Every key, revoked ones included (never their text)."""
    _, ring = _ring(ctx)
    items = [k.public() for k in ring.list()]
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table("key", "kind", "name", "scopes", "source", "rate/s", "created", "revoked")
    for k in items:
        t.add_row(k["key_id"], k["kind"], k["name"], ", ".join(k["scopes"]), k["source"],
                  f"{k['rate_limit']:g}" if k["rate_limit"] else "-", k["created_at"][:19], (k["revoked_at"] or "")[:19])
    console.print(t if items else "no API keys yet: `personable keys create NAME --scope ...`")


@keys_app.command()
@handle_errors
def revoke(ctx: typer.Context, key_id: str, as_json: bool = JSON) -> None:
    """Revoke a key (and the access tokens made from it) at once."""
    _, ring = _ring(ctx)
    key = ring.revoke(key_id)
    if as_json:
        emit_json(key.public())
        return
    console.print(f"revoked {key.key_id} at {key.revoked_at}")


@keys_app.command("user-token")
@handle_errors
def user_token_(ctx: typer.Context, user_id: str, as_json: bool = JSON) -> None:
    """The X-User-Token a page sends with a publishable key to read user USER_ID's own data."""
    from ..access.tokens import project_secret, user_token

    cfg, _ = _ring(ctx)
    token = user_token(project_secret(cfg.state_dir, "user_token_secret"), user_id)
    if as_json:
        emit_json({"user_id": user_id, "header": "X-User-Token", "token": token})
        return
    console.print(token)
