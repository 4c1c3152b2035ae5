"""`personable recommend`: catalog, train, show, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors

recommend_app = typer.Typer(help="Recommendations: catalog, train, show, evaluate.", no_args_is_help=True)


def _ids(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@recommend_app.command()
@handle_errors
def catalog(ctx: typer.Context, path: Path = typer.Argument(..., help="CSV, JSON lines or Parquet; one row per item."),
            as_json: bool = JSON) -> None:
    """Insert or update catalog items (id, name, category, brand, price, description, in_stock, ...)."""
    with _engine(ctx) as engine:
        result = engine.recommend.import_catalog(path)
    if as_json:
        emit_json(result)
    else:
        console.print(f"[green]{result['items']:,} items[/] from {path}")


@recommend_app.command()
@handle_errors
def train(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Fit the candidate generators and the ranker, register a version, precompute every profile's list."""
    from .output import progress_bar

    with _engine(ctx) as engine, progress_bar("precomputing", as_json) as bar:
        result = engine.recommend.train(progress=bar)
    if as_json:
        emit_json(result)
        return
    console.print(f"[green]recommend v{result['version']}[/]: {result['profiles']:,} profiles, {result['items']:,} "
                  f"items, {result['interactions']:,} interactions, in {result['seconds']:.1f} s")
    console.print(f"generators: {', '.join(result['generators'])}; the candidates held "
                  f"{result['candidate_recall']:.0%} of the held-out interactions")
    for name, why in result["skipped"].items():
        console.print(f"[yellow]left out {name}[/]: {why}")


@recommend_app.command()
@handle_errors
def show(ctx: typer.Context, identifier: str = typer.Argument(..., help="Any identifier of the profile."),
         placement: Optional[str] = typer.Option(None, help="A placement under recommend.placements."),
         n: Optional[int] = typer.Option(None, help="How many (default: the placement's n)."),
         viewed: Optional[str] = typer.Option(None, help="Comma-separated item ids just viewed."),
         cart: Optional[str] = typer.Option(None, help="Comma-separated item ids in the cart."),
         device: Optional[str] = typer.Option(None, help="The device in hand, e.g. mobile."),
         as_json: bool = JSON) -> None:
    """A profile's recommendations with scores and reasons."""
    with _engine(ctx) as engine:
        result = engine.recommend.recommend(identifier, placement, n,
                                            {"viewed": _ids(viewed), "cart": _ids(cart), "device": device})
    if as_json:
        emit_json(result)
        return
    from rich.table import Table

    t = Table("#", "item", "name", "category", "score", "why")
    for k, item in enumerate(result["items"], 1):
        t.add_row(str(k), item["item_id"], item["name"] or "", item["category"] or "", f"{item['score']:.3f}",
                  item["reason"])
    console.print(f"[bold]{result['profile_id']}[/] ({result['placement']}, {result['source']})")
    console.print(t)


@recommend_app.command()
@handle_errors
def evaluate(ctx: typer.Context, split: str = typer.Option("temporal", help="temporal or random."),
             k: int = typer.Option(10, help="List length judged."),
             ratio: float = typer.Option(0.8, help="Share of each profile's interactions used to train."),
             as_json: bool = JSON) -> None:
    """The leaderboard: every generator and the ranker against the popularity baseline, offline."""
    with _engine(ctx) as engine:
        result = engine.recommend.evaluate(split, k, ratio, progress=None if as_json else
                                           (lambda name: console.print(f"[dim]fitting {name}[/]")))
    if as_json:
        emit_json(result)
        return
    from rich.table import Table

    t = Table("model", f"nDCG@{k}", f"precision@{k}", f"recall@{k}", "MAP", f"hit rate@{k}", "coverage", "novelty",
              "vs popularity", "fit")
    for r in result["leaderboard"]:
        lift = r.get("ndcg_lift")
        t.add_row(r["model"], f"{r[f'ndcg@{k}']:.4f}", f"{r[f'precision@{k}']:.4f}", f"{r[f'recall@{k}']:.4f}",
                  f"{r['map']:.4f}", f"{r[f'hit_rate@{k}']:.3f}", f"{r.get('coverage', 0):.3f}",
                  f"{r.get('novelty', 0):.2f}", "" if lift is None else f"{lift:+.0%}", f"{r['fit_s']:.1f} s")
    console.print(f"{result['split']} split: {result['users']:,} profiles, {result['items']:,} items, "
                  f"{result['train_rows']:,} training / {result['test_rows']:,} test interactions")
    console.print(t)
    for name, why in result["skipped"].items():
        console.print(f"[yellow]left out {name}[/]: {why}")
