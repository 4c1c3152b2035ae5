"""`personable privacy erase` and `personable privacy verify`: erasure that can be proven; `personable
privacy rekey`: the identity key rotated."""

from __future__ import annotations

import getpass
from typing import Optional

import typer

from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@handle_errors
def erase(ctx: typer.Context,
          identifiers: Optional[list[str]] = typer.Argument(None, help="Who: ids, or email:, phone:, user_id:, "
                                                                       "anonymous_id:, profile: identifiers."),
          resume: bool = typer.Option(False, "--resume", help="Finish erasures left unfinished (a crash, a busy "
                                                              "event log, an import), and nothing else."),
          as_json: bool = JSON) -> None:
    """Erase people from every table, the online store, the event log, exports and model artifacts; print the
    certificate (also kept in the audit log). Erasing someone again shows the first erasure's certificate."""
    if not identifiers and not resume:
        raise typer.BadParameter("give who to erase, or --resume", param_hint="IDENTIFIERS")
    with _engine(ctx) as engine:
        result = ({"items": engine.privacy.resume_erasures()} if resume
                  else engine.privacy.erase(list(identifiers or []), _actor()))
    if as_json:
        emit_json(result)
        return
    for cert in result.get("items", [result]):
        _print_certificate(cert)
    if resume and not result["items"]:
        console.print("no erasure was left unfinished")


def _print_certificate(cert: dict) -> None:
    removed = cert["removed"]
    state = "[green]done[/]" if cert["state"] == "done" else f"[yellow]{cert['state']}[/] (finish: --resume)"
    console.print(f"[bold]{cert['erasure_id']}[/] {state}: {cert['people']} people, erased {cert['erased_at'][:19]}")
    for table, n in removed["tables"].items():
        console.print(f"  {table}: {n}")
    console.print(f"  online documents: {removed['online_documents']}; event log: {removed['event_log']}; "
                  f"store compacted: {'yes' if removed['store_compacted'] else 'no'}")
    for export in removed["exports"]:
        console.print(f"  export {export['file']}: {export['rows']} rows")
    for artifact in removed["model_artifacts"]:
        console.print(f"  model artifact deleted: {artifact}")
    if cert["retrain"]:
        console.print(f"  retrain: {', '.join(cert['retrain'])}")
    if cert.get("already_erased"):
        console.print(f"  erased before: {', '.join(cert['already_erased'])}")
    console.print(f"  certificate hash {cert.get('hash') or '(when done)'}")


@handle_errors
def verify(ctx: typer.Context,
           values: list[str] = typer.Argument(..., help="Ids, emails, phones, names to seek."),
           as_json: bool = JSON) -> None:
    """Seek values in every store and file (the offline store's text columns, the online store, every file under
    .personable/ and the export folder); exits 1 when any is found."""
    with _engine(ctx) as engine:
        report = engine.privacy.verify(list(values))
    if as_json:
        emit_json(report)
    else:
        for f in report["findings"]:
            console.print(f"[red]found[/] in {f['where']}{' (' + f['column'] + ')' if f.get('column') else ''}: "
                          f"{', '.join(f['values'])}")
        for problem in report["unregistered_tables"]:
            console.print(f"[yellow]warning[/]: {problem}")
        for e in report["erasures"]:
            console.print(f"erased by {e['erasure_id']} at {e['erased_at'][:19]} (certificate {e['hash'][:16]}...)")
        console.print("[green]no finding[/]: none of the values is held anywhere" if report["clean"]
                      else f"[red]{len(report['findings'])} findings[/]")
    if not report["clean"]:
        raise typer.Exit(1)


@handle_errors
def rekey(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Rotate the identity key: a new key in .personable/keys.json, and every stored email and phone digest
    wrapped under it in one transaction (the older keys stay: back up keys.json with the store)."""
    with _engine(ctx) as engine:
        report = engine.privacy.rekey()
    if as_json:
        emit_json(report)
        return
    console.print(f"identities now keyed with [bold]{report['key_id']}[/] (before: {report['previous_key_id']})")
    for table, n in report["rekeyed"].items():
        console.print(f"  {table}: {n} digests rewrapped")
    console.print(f"  online store: {report['online_documents']} profiles written again, "
                  f"{report['online_keys_dropped']} old lookup keys dropped")
