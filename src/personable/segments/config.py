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
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, ValidationError, ValidatorFunctionWrapHandler, WithJsonSchema
from pydantic import WrapValidator
from pydantic import model_validator

from ..errors import ErrorList
from ..settings import Section, fail, problems_from, relocate
from .rules import Rule, parse_rule, segment_references, time_dependent

SEGMENT_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# For editors: the rule language's shape, loosely; segments/rules.py checks it
# precisely (with the path of every problem) when the file is loaded.
RULE_SCHEMA: dict[str, Any] = {
    "type": "object", "minProperties": 1,
    "description": "one of trait, computed, event (with count, within, where), in_segment, all, any, not; "
                   "comparisons eq, ne, gt, gte, lt, lte, in, not_in, contains, starts_with, between, exists, "
                   "within, older_than (docs/segments.md)",
}


@dataclass(frozen=True)
class SegmentDef:
    segment_id: str
    name: str
    description: str
    rule: Rule
    raw_rule: dict[str, Any] = field(hash=False, compare=False)
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


class SegmentSection(Section):
    """One segment: a rule on traits, computed traits and behaviour (docs/segments.md)."""

    name: str | None = None
    """Shown in the dashboard and exports (default: from the id)."""
    description: str | None = None
    rule: Any = Field(json_schema_extra=RULE_SCHEMA)
    """The rule: trait, computed, event, in_segment, all, any or not (docs/segments.md)."""
    _parsed: Rule | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _rule_is_valid(self) -> "SegmentSection":
        # The rule language checks itself, naming the path of every problem.
        errors = ErrorList()
        self._parsed = parse_rule(self.rule, "rule", errors)
        fail(((p.path,), p.problem, None) for p in errors.items)
        return self

    def to_def(self, segment_id: str, origin: str = "config") -> SegmentDef:
        assert self._parsed is not None
        return SegmentDef(segment_id, self.name or segment_id.replace("_", " ").capitalize(),
                          self.description or "", self._parsed, self.rule, origin)


def _id_problem(segment_id: Any) -> str | None:
    if isinstance(segment_id, str) and SEGMENT_ID.match(segment_id):
        return None
    return "a segment id is lower-case letters, digits and _, starting with a letter (at most 63)"


def parse_segment(segment_id: Any, raw: Any, path: str, errors: ErrorList, origin: str = "config") -> SegmentDef | None:
    """One definition (from the API, or stored): problems go to ``errors`` under ``path``."""
    if problem := _id_problem(segment_id):
        errors.add(path, problem)
        return None
    try:
        section = SegmentSection.model_validate(raw)
    except ValidationError as exc:
        errors.items.extend(problems_from(exc, SegmentSection, path))
        return None
    return section.to_def(segment_id, origin)


def _segments(value: Any, handler: ValidatorFunctionWrapHandler) -> dict[str, SegmentSection]:
    """Each segment on its own, then their references, so that every problem
    (bad ids, bad rules, undefined references, cycles) is reported at once."""
    if not isinstance(value, dict):
        return handler(value)  # type: ignore[no-any-return]
    sections: dict[str, SegmentSection] = {}
    problems: list[Any] = []
    for segment_id, spec in value.items():
        if problem := _id_problem(segment_id):
            problems.append(((str(segment_id),), problem, segment_id))
            continue
        try:
            sections[segment_id] = SegmentSection.model_validate(spec)
        except ValidationError as exc:
            problems.extend(relocate(exc, (segment_id,)))
    errors = ErrorList()
    # A segment that failed is still defined: what refers to it is not wrong too.
    check_references([s.to_def(sid) for sid, s in sections.items()], errors, {str(k) for k in value})
    for p in errors.items:  # their paths start at segments
        rest = p.path.removeprefix("segments").lstrip(".")
        problems.append(((rest,) if rest else (), p.problem, None))
    fail(problems)
    return sections


# The segments: section: segment id -> definition.
Segments = Annotated[dict[str, SegmentSection], WrapValidator(_segments),
                     Field(json_schema_extra={"propertyNames": {"pattern": SEGMENT_ID.pattern}})]


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


# -- rfm: and lifecycle: (here, not beside their Ibis code, so that reading the
# configuration does not import Ibis) ------------------------------------------------------
# (name, R range, FM range) -- FM is the rounded mean of F and M. The first
# matching row names the customer; the default table covers the 5 x 5 grid.
DEFAULT_RFM_SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (5, 5), (4, 5)),
    ("Champions", (4, 4), (5, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential Loyalist", (4, 5), (2, 3)),
    ("New", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About to Sleep", (3, 3), (1, 2)),
    ("Can't Lose Them", (1, 2), (5, 5)),
    ("At Risk", (1, 2), (3, 4)),
    ("Hibernating", (2, 2), (1, 2)),
    ("Lost", (1, 1), (1, 2)),
)


@dataclass(frozen=True)
class RfmConfig:
    order_event: str = "Order Completed"
    segments: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = DEFAULT_RFM_SEGMENTS


def _score_range(value: list[int]) -> tuple[int, int]:
    if not (len(value) == 2 and all(1 <= v <= 5 for v in value) and value[0] <= value[1]):
        raise ValueError("must be [low, high] with scores from 1 to 5")
    return value[0], value[1]


ScoreRange = Annotated[list[int], AfterValidator(_score_range), WithJsonSchema(
    {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 5}, "minItems": 2, "maxItems": 2})]


class RfmSegment(Section):
    name: str
    """The segment's name, the value of the computed trait rfm_segment."""
    r: ScoreRange
    """[low, high] recency score, 1-5 (5: most recent)."""
    fm: ScoreRange
    """[low, high] of the rounded mean of the frequency and monetary scores, 1-5."""


class RfmSection(Section):
    """RFM: recency, frequency and monetary quintile scores and named segments, as computed traits."""

    order_event: Annotated[str, Field(min_length=1)] | None = None
    """Deprecated: set events.order_event (what counts as an order, for everything)."""
    segments: Annotated[list[RfmSegment], Field(min_length=1)] | None = None
    """The named segments, first match wins (default: the customary table)."""

    def to_config(self, order_event: str) -> RfmConfig:
        table = tuple((s.name, tuple(s.r), tuple(s.fm)) for s in self.segments) if self.segments else None
        return RfmConfig(order_event=order_event, segments=table or DEFAULT_RFM_SEGMENTS)  # type: ignore[arg-type]


class LifecycleSection(Section):
    """Lifecycle stage thresholds: prospect, new, active, loyal, at_risk, lapsed, reactivated."""

    new_days: Annotated[int, Field(ge=1)] = 30
    """New: first order at most this long ago."""
    active_days: Annotated[int, Field(ge=1)] = 90
    """Active: last order at most this long ago."""
    lapsed_days: Annotated[int, Field(ge=1)] = 180
    """Lapsed: last order longer ago than this (between active_days and this: at_risk)."""
    loyal_orders: Annotated[int, Field(ge=1)] = 3
    """Loyal: active with at least this many orders."""
    reactivated_days: Annotated[int, Field(ge=1)] = 30
    """Reactivated: ordered this recently after a gap longer than lapsed_days."""

    @model_validator(mode="after")
    def _ordered(self) -> "LifecycleSection":
        if self.active_days > self.lapsed_days:
            fail([(("active_days",), "must not be above lapsed_days", self.active_days)])
        return self


class LifecycleConfig(LifecycleSection):
    """The thresholds, with the order event (rfm.order_event: one definition of an order)."""

    order_event: str = "Order Completed"
