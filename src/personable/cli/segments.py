"""`personable segments`: list, show, members, refresh, export."""

from __future__ import annotations

from typing import Optional

import typer

from .context import JSON, open_engine as _engine
from .output import console, emit_json, handle_errors

segments_app = typer.Typer(help="Segments: list, show, members, history, refresh, export.", no_args_is_help=True)



@segments_app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Every segment with its size and when it was last refreshed."""
    with _engine(ctx) as engine:
        items = engine.segments.list()
    if as_json:
        emit_json(items)
        return
    from rich.table import Table

    t = Table("segment", "name", "size", "refreshed", "origin", "time-dependent")
    for s in items:
        t.add_row(s["segment_id"], s["name"], f"{s['size']:,}", (s["refreshed_at"] or "never")[:19], s["origin"],
                  "yes" if s["time_dependent"] else "no")
    console.print(t if items else "no segments yet: add some under `segments:` in personable.yaml")


@segments_app.command()
@handle_errors
def show(ctx: typer.Context, segment_id: str, as_json: bool = JSON) -> None:
    """A segment's definition, size and size over time."""
    with _engine(ctx) as engine:
        seg = engine.segments.show(segment_id)
    if as_json:
        emit_json(seg)
        return
    import yaml

    console.print(f"[bold]{seg['segment_id']}[/] {seg['name']}: {seg['size']:,} members "
                  f"(refreshed {(seg['refreshed_at'] or 'never')[:19]})")
    if seg["description"]:
        console.print(seg["description"])
    console.print(yaml.safe_dump({"rule": seg["rule"]}, sort_keys=False).rstrip())
    for s in seg["sizes"][-15:]:
        console.print(f"  {s['at'][:19]}  {s['size']:>8,}  +{s['entered']:,} -{s['exited']:,}  ({s['cause']})")


@segments_app.command()
@handle_errors
def members(ctx: typer.Context, segment_id: str, limit: int = typer.Option(50), offset: int = typer.Option(0),
            as_json: bool = JSON) -> None:
    """Current members (paged), oldest membership first."""
    with _engine(ctx) as engine:
        items = engine.segments.members(segment_id, limit, offset)
    if as_json:
        emit_json(items)
        return
    for m in items:
        console.print(f"{m['profile_id']}  since {m['entered_at'][:19]}")


@segments_app.command()
@handle_errors
def history(ctx: typer.Context, segment_id: str, profile: Optional[str] = typer.Option(None, help="Only this profile."),
            limit: int = typer.Option(50), as_json: bool = JSON) -> None:
    """Membership spells: who entered and left, when, and why."""
    with _engine(ctx) as engine:
        items = engine.segments.history(profile, segment_id, limit)
    if as_json:
        emit_json(items)
        return
    for h in items:
        out = f"-> {h['exited_at'][:19]} ({h['exited_by']})" if h["exited_at"] else "-> now"
        console.print(f"{h['profile_id']}  {h['entered_at'][:19]} ({h['entered_by']}) {out}")


@segments_app.command()
@handle_errors
def refresh(ctx: typer.Context, segment: list[str] = typer.Option([], "--segment", help="Only these (repeatable)."),
            as_json: bool = JSON) -> None:
    """Recompute membership now (the server also does this on a schedule)."""
    with _engine(ctx) as engine:
        result = engine.segments.refresh(segment or None, "manual")
    if as_json:
        emit_json(result)
        return
    for r in result["segments"]:
        console.print(f"{r['segment_id']}: {r['size']:,} members (+{r['entered']:,} -{r['exited']:,}) in {r['seconds']} s")


@segments_app.command()
@handle_errors
def export(ctx: typer.Context, segment_id: str, path: str = typer.Argument(..., help="A .csv or .parquet file."),
           file_format: Optional[str] = typer.Option(None, "--format", help="csv or parquet (default: from the extension)."),
           as_json: bool = JSON) -> None:
    """Write the members (ids, computed basics, traits) to CSV or Parquet."""
    with _engine(ctx) as engine:
        result = engine.segments.export(segment_id, path, file_format)
    if as_json:
        emit_json(result)
    else:
        console.print(f"wrote {result['members']:,} members to {result['path']} ({result['format']})")


@segments_app.command()
@handle_errors
def compute(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Recompute RFM scores / segments and lifecycle stages (computed traits on every profile)."""
    with _engine(ctx) as engine:
        result = engine.segments.compute()
    if as_json:
        emit_json(result)
        return
    console.print(f"RFM for {result['customers_scored']:,} customers, lifecycle for {result['profiles_staged']:,} profiles "
                  f"({result['changed_profiles']:,} changed) in {result['seconds']} s")
    console.print("RFM segments: " + ", ".join(f"{r['value']} {r['profiles']:,}" for r in result["rfm_segments"]))
    console.print("lifecycle: " + ", ".join(f"{r['value']} {r['profiles']:,}" for r in result["lifecycle_stages"]))


@segments_app.command()
@handle_errors
def transitions(ctx: typer.Context, profile: str, key: Optional[str] = typer.Option(None, help="lifecycle_stage or rfm_segment."),
                as_json: bool = JSON) -> None:
    """A profile's lifecycle stage and RFM segment over time."""
    with _engine(ctx) as engine:
        items = engine.segments.transitions(profile, key)
    if as_json:
        emit_json(items)
        return
    for t in items:
        console.print(f"{t['key']}: {t['value']}  {t['since'][:19]} -> {(t['until'] or 'now')[:19]}")



@segments_app.command()
@handle_errors
def cluster(ctx: typer.Context,
            method: str = typer.Option("kmeans", help="kmeans, gmm, agglomerative, dbscan or hdbscan."),
            k: str = typer.Option("auto", "--k", help="Number of clusters, or auto (silhouette; BIC for gmm)."),
            pca: Optional[float] = typer.Option(None, help="Keep this share of variance (0-1) or this many components."),
            population: str = typer.Option("customers", help="Fit on customers (with a userId) or all profiles."),
            boots: int = typer.Option(5, help="Bootstrap refits for the stability check (0: skip)."),
            as_json: bool = JSON) -> None:
    """Fit behavioural clusters; each profile gets computed.cluster, described in words."""
    n_clusters: int | str = int(k) if k.isdigit() else k
    pca_value = int(pca) if pca is not None and pca >= 1 else pca
    with _engine(ctx) as engine:
        result = engine.segments.cluster(method, n_clusters, pca_value, None, boots, population)
    if as_json:
        emit_json(result)
        return
    scores = ", ".join(f"k={kk}: " + " ".join(f"{n} {v:.3f}" if abs(v) < 10 else f"{n} {v:,.0f}" for n, v in s.items())
                       for kk, s in result["scores"].items())
    console.print(f"{method}: {result['n_clusters']} clusters over {result['profiles_fitted']:,} {result['population']} "
                  f"({scores}); {result['profiles_assigned']:,} profiles placed")
    if result.get("stability"):
        console.print(f"stability: bootstrap adjusted Rand index {result['stability']['ari_mean']:.3f} "
                      f"(lowest {result['stability']['ari_min']:.3f})")
    for c in result["clusters"]:
        console.print(f"[bold]cluster {c['cluster']}[/] ({c['size']:,}, {c['share']:.0%}): {c['summary']}")
