"""Guards that keep shared or junk values from collapsing many people into one.

Two places: before matching, values that cannot be evidence (junk such as
``test@test.com``, ``0000000000``, "N/A", and values held by more records than
``max_shared`` -- a company switchboard, a family email) are blanked, so they
neither form candidate pairs nor add match weight; after scoring, clusters of
auto-merge links larger than ``max_cluster_size`` are blocked rather than merged.
Everything blocked is reported.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..identifiers import JUNK_EMAIL_LOCAL
from .config import ResolutionConfig

# Kinds of fields that identify a person on their own: sharing one is suspicious.
IDENTIFYING = ("email", "phone")


@dataclass
class Blocked:
    values: list[dict[str, Any]] = field(default_factory=list)     # {field, value, records, reason}
    clusters: list[dict[str, Any]] = field(default_factory=list)   # {size, profiles (first 20), reason}

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {"values": self.values, "clusters": self.clusters}


def is_junk(kind: str, value: str, junk: frozenset[str]) -> bool:
    text = value.strip().lower()
    if text in junk:
        return True
    if kind == "phone":
        digits = re.sub(r"\D", "", text)
        return len(digits) < 6 or len(set(digits[-7:])) == 1
    if kind == "email":
        local, _, domain = text.partition("@")
        return local in JUNK_EMAIL_LOCAL or not domain
    return False


def blank_unusable(records: pa.Table, cfg: ResolutionConfig, junk: frozenset[str], blocked: Blocked) -> pa.Table:
    """Blank junk values, and identifying values shared by more than ``max_shared``
    people (distinct profiles when records carry ``profile_id``: one person's
    several records repeating their own phone is not sharing)."""
    owners = records.column("profile_id").to_pylist() if "profile_id" in records.column_names else None
    for name, kind in cfg.fields:
        if name not in records.column_names:
            continue
        values = records.column(name).to_pylist()
        counts: Counter[str] = Counter()
        if kind in IDENTIFYING:
            pairs = set(zip(values, owners)) if owners is not None else None
            counts = Counter(v for v, _ in pairs if v is not None) if pairs is not None else Counter(v for v in values if v is not None)
        bad: dict[str, str] = {}
        for value in set(v for v in values if v is not None):
            if is_junk(kind, value, junk):
                bad[value] = "junk value"
            elif counts[value] > cfg.max_shared:
                bad[value] = f"shared by {counts[value]} {'profiles' if owners is not None else 'records'} (more than max_shared={cfg.max_shared})"
        if not bad:
            continue
        all_counts = Counter(v for v in values if v in bad)
        for value, reason in sorted(bad.items()):
            blocked.values.append({"field": name, "value": value, "records": all_counts[value], "reason": reason})
        mask = pa.array([v in bad if v is not None else False for v in values])
        column = pc.if_else(mask, pa.scalar(None, records.schema.field(name).type), records.column(name))
        records = records.set_column(records.column_names.index(name), name, column)
    return records


def components(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Connected components of an undirected graph (union-find with path halving)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for node in parent:
        groups.setdefault(find(node), []).append(node)
    return [sorted(g) for g in groups.values()]
