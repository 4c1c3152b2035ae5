"""Reading results against the simulator's ground truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def crm_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def crm_truth(path: str | Path) -> list[str]:
    """The true customer of each CRM row, in file order."""
    return [r["customer_id"] for r in crm_rows(path)]


def crm_row_profiles(engine: Any, rows: list[dict[str, str]]) -> list[str | None]:
    """Each CRM row's current profile, found through the identify event it became
    (matched on the row's values; rows that were quarantined map to None)."""
    fields = [c for c in rows[0] if c not in ("customer_id", "updated_at")]
    table = engine.sql("""SELECT coalesce(d.to_profile, e.profile_id) AS pid, e.traits::VARCHAR AS traits FROM events e
                          LEFT JOIN profile_redirects d ON d.from_profile = e.profile_id WHERE e.type = 'identify'""")
    found = {}
    for pid, traits in zip(table.column("pid").to_pylist(), table.column("traits").to_pylist()):
        t = json.loads(traits)
        found[tuple(str(t[f]) if t.get(f) is not None else "" for f in fields)] = pid
    return [found.get(tuple(row[f] for f in fields)) for row in rows]
