"""Readable terminal rendering of a profile."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel
from rich.table import Table

from .output import console


def render_profile(doc: dict[str, Any]) -> None:
    c = doc["computed"]
    head = Table(show_header=False, box=None)
    for key in ("first_seen", "last_seen", "event_count", "session_count", "page_count", "order_count",
                "revenue", "last_device", "last_channel"):
        value = c.get(key)
        head.add_row(key.replace("_", " "), f"{value:,.2f}" if isinstance(value, float) else str(value))
    console.print(Panel(head, title=f"profile {doc['profile_id']}", expand=False))
    if doc["traits"]:
        t = Table("trait", "value", "observed", "source")
        for key, value in doc["traits"].items():
            meta = doc["trait_sources"].get(key, {})
            t.add_row(key, str(value), str(meta.get("observed_at", ""))[:19], str(meta.get("source", "")))
        console.print(t)
    ids = Table("identity", "value", "first seen")
    for ident in doc["identities"]:
        ids.add_row(ident["kind"], ident["value"][:40], str(ident["first_seen"])[:19])
    console.print(ids)
    if doc["consents"]:
        console.print("consents: " + ", ".join(
            f"{p}={'yes' if v['granted'] else 'no'}" for p, v in doc["consents"].items()))
    if doc["merged_from"]:
        console.print("merged from: " + ", ".join(doc["merged_from"]))
    ev = Table("time", "type", "event / name")
    for e in doc["recent_events"]:
        ev.add_row(str(e["timestamp"])[:19], e["type"], e.get("event") or e.get("name") or "")
    console.print(ev)
