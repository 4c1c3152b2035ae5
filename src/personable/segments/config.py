"""Segment definitions: the ``segments:`` section of personable.yaml, and the
same shape sent to the API.

    segments:
      high_value_at_risk:
        name: High-value customers at risk
        description: spent over 200 and ordered twice in 90 days, but not in the last 30
        rule:
          all:
            - {computed: revenue, gt: 200}
            - {event: Order Completed, count: {gte: 2}, within: 90d}
            - not: {event: Order Completed, within: 30d}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorList
from .rules import Rule, parse_rule, segment_references, time_dependent

SEGMENT_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SegmentDef:
    segment_id: str
    name: str
    description: str
    rule: Rule
    raw_rule: dict = field(hash=False, compare=False)
    origin: str = "config"   # config | api

    @property
    def depends_on(self) -> set[str]:
        return segment_references(self.rule)

    @property
    def time_dependent(self) -> bool:
        return time_dependent(self.rule)

    def as_dict(self) -> dict[str, Any]:
        return {"segment_id": self.segment_id, "name": self.name, "description": self.description,
                "rule": self.raw_rule, "origin": self.origin, "depends_on": sorted(self.depends_on),
                "time_dependent": self.time_dependent}


def parse_segment(segment_id: Any, raw: Any, path: str, errors: ErrorList, origin: str = "config") -> SegmentDef | None:
    if not isinstance(segment_id, str) or not SEGMENT_ID.match(segment_id):
        errors.add(path, "a segment id is lower-case letters, digits and _, starting with a letter (at most 63)")
        return None
    if not isinstance(raw, dict):
        errors.add(path, "must be a mapping with a rule (and optionally name, description)")
        return None
    unknown = set(raw) - {"name", "description", "rule"}
    if unknown:
        errors.add(path, f"unknown key(s) {', '.join(sorted(unknown))}")
    if "rule" not in raw:
        errors.add(f"{path}.rule", "is required")
        return None
    for key in ("name", "description"):
        if key in raw and not isinstance(raw[key], str):
            errors.add(f"{path}.{key}", "must be text")
    rule = parse_rule(raw["rule"], f"{path}.rule", errors)
    if rule is None:
        return None
    return SegmentDef(segment_id, str(raw.get("name") or segment_id.replace("_", " ").capitalize()),
                      str(raw.get("description") or ""), rule, raw["rule"], origin)


def parse_segments(raw: Any, errors: ErrorList) -> tuple[SegmentDef, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        errors.add("segments", "must be a mapping of segment id: definition")
        return ()
    out = [s for sid, spec in raw.items() if (s := parse_segment(sid, spec, f"segments.{sid}", errors))]
    check_references(out, errors)
    return tuple(out)


def check_references(segments: list[SegmentDef], errors: ErrorList, known: set[str] | None = None) -> None:
    """Every in_segment names a defined segment, and no segment depends on itself."""
    ids = {s.segment_id for s in segments} | (known or set())
    for s in segments:
        for ref in sorted(s.depends_on - ids):
            errors.add(f"segments.{s.segment_id}.rule", f"in_segment {ref!r} is not a defined segment")
    try:
        refresh_order(segments)
    except ValueError as exc:
        errors.add("segments", str(exc))


def refresh_order(segments: list[SegmentDef]) -> list[SegmentDef]:
    """Segments ordered so that every segment comes after those it uses."""
    by_id = {s.segment_id: s for s in segments}
    done: list[SegmentDef] = []
    state: dict[str, int] = {}

    def visit(sid: str, chain: list[str]) -> None:
        if state.get(sid) == 2 or sid not in by_id:
            return
        if state.get(sid) == 1:
            raise ValueError(f"segments depend on each other in a cycle: {' -> '.join(chain + [sid])}")
        state[sid] = 1
        for dep in sorted(by_id[sid].depends_on):
            visit(dep, chain + [sid])
        state[sid] = 2
        done.append(by_id[sid])

    for sid in by_id:
        visit(sid, [])
    return done
