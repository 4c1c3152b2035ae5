"""The segment rule language: parsed from YAML / JSON into a small tree,
validated with the path of every problem, compiled to Ibis (never by pasting
strings into SQL), and evaluated in plain Python too -- the reference the
compiled query is tested against, and what realtime evaluation can use.

    all:
      - computed: revenue            # computed traits: profile aggregates, RFM, lifecycle, cluster
        gt: 200
      - trait: plan                  # traits as stored (standardized)
        in: [pro, enterprise]
      - event: Order Completed       # behaviour: how often, in which window, with which properties
        count: {gte: 2}
        within: 30d
        where: [{property: revenue, gt: 100}]
      - not:
          event: Product Viewed
          within: 14d                # "did not view a product in the last 14 days"
      - in_segment: newsletter_readers
      - any: [...]

Comparison operators: eq, ne, gt, gte, lt, lte, in, not_in, contains,
starts_with, between [low, high], exists (true/false); for timestamps also
within / older_than (durations such as 30d, 12h, 2w).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Union

from ..errors import ErrorList
from ..quality.config import duration_seconds

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with", "between", "exists",
       "within", "older_than")
COUNT_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
PROFILE_COLUMNS = {"event_count": "number", "session_count": "number", "page_count": "number",
                   "order_count": "number", "revenue": "number", "first_seen": "time", "last_seen": "time",
                   "last_device": "string", "last_channel": "string", "created_at": "time"}
Scalar = Union[str, int, float, bool]


@dataclass(frozen=True)
class Compare:
    op: str
    value: Any  # scalar, list (in / not_in / between), bool (exists), seconds (within / older_than)


@dataclass(frozen=True)
class TraitCond:
    name: str
    compare: Compare


@dataclass(frozen=True)
class ComputedCond:
    name: str
    compare: Compare


@dataclass(frozen=True)
class PropertyCond:
    name: str
    compare: Compare


@dataclass(frozen=True)
class EventCond:
    event: str | None
    type: str                         # track, page, ...: the parser always settles it
    count: Compare                    # on how many matching events
    within_seconds: int | None
    where: tuple[PropertyCond, ...]


@dataclass(frozen=True)
class InSegment:
    segment_id: str


@dataclass(frozen=True)
class All:
    items: tuple["Rule", ...]


@dataclass(frozen=True)
class Any_:
    items: tuple["Rule", ...]


@dataclass(frozen=True)
class Not:
    item: "Rule"


Rule = Union[TraitCond, ComputedCond, EventCond, InSegment, All, Any_, Not]


# -- parsing -------------------------------------------------------------------------------
def _scalar_ok(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool)) and not (isinstance(v, float) and v != v)


def _compare(raw: dict[str, Any], path: str, errors: ErrorList, allowed: tuple[str, ...] = OPS,
             default: Compare | None = None) -> Compare | None:
    ops = [k for k in raw if k in OPS]
    if not ops:
        if default is not None:
            return default
        errors.add(path, f"needs one comparison: {', '.join(allowed)}")
        return None
    if len(ops) > 1:
        errors.add(path, f"has several comparisons ({', '.join(ops)}); combine conditions with all: instead")
        return None
    op = ops[0]
    value = raw[op]
    where = f"{path}.{op}"
    if op not in allowed:
        errors.add(where, f"is not allowed here; use one of {', '.join(allowed)}")
        return None
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(_scalar_ok(v) for v in value):
            errors.add(where, "must be a non-empty list of values")
            return None
        return Compare(op, tuple(value))
    if op == "between":
        if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                    for v in value)):
            errors.add(where, "must be [low, high], two numbers")
            return None
        return Compare(op, (float(value[0]), float(value[1])))
    if op == "exists":
        if not isinstance(value, bool):
            errors.add(where, "must be true or false")
            return None
        return Compare(op, value)
    if op in ("within", "older_than"):
        seconds = duration_seconds(str(value))
        if seconds is None:
            errors.add(where, f"must be a duration like 30d, 12h or 2w, got {value!r}")
            return None
        return Compare(op, seconds)
    if op in ("gt", "gte", "lt", "lte") and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        errors.add(where, f"must be a number, got {value!r}")
        return None
    if op in ("contains", "starts_with") and not isinstance(value, str):
        errors.add(where, f"must be text, got {value!r}")
        return None
    if not _scalar_ok(value):
        errors.add(where, f"must be a single value (text, number, true/false), got {value!r}")
        return None
    return Compare(op, value)


KEYS = {"trait", "computed", "event", "type", "count", "within", "where", "in_segment", "all", "any", "not"}


def parse_rule(raw: Any, path: str, errors: ErrorList) -> Rule | None:
    """A rule tree from its YAML / JSON form; problems go to ``errors`` with their path."""
    if not isinstance(raw, dict) or not raw:
        errors.add(path, "must be a condition: a mapping with trait, computed, event, in_segment, all, any or not")
        return None
    kinds = [k for k in ("trait", "computed", "event", "type", "in_segment", "all", "any", "not") if k in raw]
    if "event" in raw and "type" in raw:
        kinds.remove("type")
    if len(kinds) != 1:
        errors.add(path, "must hold exactly one of trait, computed, event (or type), in_segment, all, any, not"
                   + (f"; found {', '.join(kinds)}" if kinds else ""))
        return None
    kind = kinds[0]
    if kind in ("all", "any"):
        items = raw[kind]
        if not isinstance(items, list) or not items:
            errors.add(f"{path}.{kind}", "must be a non-empty list of conditions")
            return None
        parsed = [parse_rule(item, f"{path}.{kind}[{i}]", errors) for i, item in enumerate(items)]
        children = tuple(p for p in parsed if p is not None)
        if len(children) != len(parsed):
            return None
        return All(children) if kind == "all" else Any_(children)
    if kind == "not":
        inner = parse_rule(raw["not"], f"{path}.not", errors)
        return Not(inner) if inner is not None else None
    if kind == "in_segment":
        if not isinstance(raw["in_segment"], str) or not raw["in_segment"]:
            errors.add(f"{path}.in_segment", "must name a segment")
            return None
        return InSegment(raw["in_segment"])
    if kind in ("trait", "computed"):
        name = raw[kind]
        if not isinstance(name, str) or not name:
            errors.add(f"{path}.{kind}", "must name a field")
            return None
        unknown = set(raw) - {kind} - set(OPS)
        if unknown:
            errors.add(path, f"unknown key(s) {', '.join(sorted(unknown))}")
            return None
        compare = _compare(raw, path, errors)
        if compare is None:
            return None
        if compare.op in ("within", "older_than") and not (kind == "computed" and PROFILE_COLUMNS.get(name) == "time"):
            errors.add(f"{path}.{compare.op}", "applies to time fields only (first_seen, last_seen, created_at)")
            return None
        return TraitCond(name, compare) if kind == "trait" else ComputedCond(name, compare)
    # behaviour
    unknown = set(raw) - {"event", "type", "count", "within", "where"}
    if unknown:
        errors.add(path, f"unknown key(s) {', '.join(sorted(unknown))}; an event condition takes event, type, count, within, where")
        return None
    event = raw.get("event")
    etype = raw.get("type", "track" if event is not None else None)
    if event is not None and (not isinstance(event, str) or not event):
        errors.add(f"{path}.event", "must be an event name")
        return None
    if etype not in ("track", "page", "screen", "identify", "group", "alias"):
        errors.add(f"{path}.type", "must be track, page, screen, identify, group or alias")
        return None
    count_raw = raw.get("count", {"gte": 1})
    if isinstance(count_raw, int) and not isinstance(count_raw, bool):
        count_raw = {"gte": count_raw}
    if not isinstance(count_raw, dict):
        errors.add(f"{path}.count", "must be a comparison such as {gte: 2}")
        return None
    count = _compare(count_raw, f"{path}.count", errors, COUNT_OPS)
    if count is not None and count.op != "between" and (not isinstance(count.value, int) or count.value < 0):
        errors.add(f"{path}.count", "compares with a whole number of events")
        count = None
    within = None
    if "within" in raw:
        within = duration_seconds(str(raw["within"]))
        if within is None:
            errors.add(f"{path}.within", f"must be a duration like 30d, 12h or 2w, got {raw['within']!r}")
    where_raw = raw.get("where", [])
    if isinstance(where_raw, dict):
        where_raw = [where_raw]
    where = []
    if not isinstance(where_raw, list):
        errors.add(f"{path}.where", "must be a list of property conditions")
    else:
        for i, w in enumerate(where_raw):
            wp = f"{path}.where[{i}]"
            if not isinstance(w, dict) or not isinstance(w.get("property"), str):
                errors.add(wp, "must be {property: name, <comparison>: value}")
                continue
            c = _compare({k: v for k, v in w.items() if k != "property"}, wp, errors,
                         tuple(o for o in OPS if o not in ("within", "older_than")))
            if c is not None:
                where.append(PropertyCond(w["property"], c))
    if count is None or (within is None and "within" in raw) or len(where) != len(where_raw if isinstance(where_raw, list) else []):
        return None
    return EventCond(event, etype, count, within, tuple(where))


def segment_references(rule: Rule) -> set[str]:
    """Segments a rule depends on (for refresh order and cycle checks)."""
    if isinstance(rule, InSegment):
        return {rule.segment_id}
    if isinstance(rule, (All, Any_)):
        return set().union(*(segment_references(r) for r in rule.items))
    if isinstance(rule, Not):
        return segment_references(rule.item)
    return set()


def event_kinds(rule: Rule) -> tuple[set[str], set[str]]:
    """(track event names, other event types) a rule counts."""
    if isinstance(rule, EventCond):
        if rule.event is not None and rule.type == "track":
            return {rule.event}, set()
        return set(), {rule.type}
    names: set[str] = set()
    types: set[str] = set()
    children = rule.items if isinstance(rule, (All, Any_)) else (rule.item,) if isinstance(rule, Not) else ()
    for child in children:
        n, t = event_kinds(child)
        names |= n
        types |= t
    return names, types


def time_dependent(rule: Rule) -> bool:
    """Whether the mere passing of time can change the rule's verdict (windows)."""
    if isinstance(rule, EventCond):
        return rule.within_seconds is not None
    if isinstance(rule, ComputedCond):
        return rule.compare.op in ("within", "older_than")
    if isinstance(rule, (All, Any_)):
        return any(time_dependent(r) for r in rule.items)
    if isinstance(rule, Not):
        return time_dependent(rule.item)
    return False


# -- the reference evaluation in Python -------------------------------------------------------
def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def compare_value(c: Compare, v: Any, now: datetime | None = None) -> bool:
    """One comparison on one value, with the semantics the SQL has: numbers
    compare as numbers, everything else as text; a missing value only satisfies
    ``exists: false``."""
    if c.op == "exists":
        return bool((v is not None) == c.value)
    if v is None:
        return False
    if c.op in ("within", "older_than"):
        if not isinstance(v, datetime) or now is None:
            return False
        cutoff = now - timedelta(seconds=c.value)
        return v >= cutoff if c.op == "within" else v < cutoff
    if c.op in ("gt", "gte", "lt", "lte", "between"):
        n = _number(v)
        if n is None:
            return False
        if c.op == "between":
            return bool(c.value[0] <= n <= c.value[1])
        return bool({"gt": n > c.value, "gte": n >= c.value, "lt": n < c.value, "lte": n <= c.value}[c.op])
    if c.op in ("contains", "starts_with"):
        t = _text(v)
        return t is not None and (c.value in t if c.op == "contains" else t.startswith(c.value))
    targets = c.value if c.op in ("in", "not_in") else (c.value,)
    hit = any(_equal(v, t) for t in targets)
    return hit if c.op in ("eq", "in") else not hit


def _equal(v: Any, target: Scalar) -> bool:
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        n = _number(v)
        return n is not None and n == float(target)
    return _text(v) == _text(target)


def evaluate(rule: Rule, profile: dict[str, Any], now: datetime) -> bool:
    """The rule on one profile view: ``{"traits": {...}, "computed": {...},
    "events": [{"event", "type", "timestamp", "properties"}], "segments": set()}``."""
    if isinstance(rule, All):
        return all(evaluate(r, profile, now) for r in rule.items)
    if isinstance(rule, Any_):
        return any(evaluate(r, profile, now) for r in rule.items)
    if isinstance(rule, Not):
        return not evaluate(rule.item, profile, now)
    if isinstance(rule, InSegment):
        return rule.segment_id in profile.get("segments", ())
    if isinstance(rule, TraitCond):
        return compare_value(rule.compare, profile.get("traits", {}).get(rule.name), now)
    if isinstance(rule, ComputedCond):
        return compare_value(rule.compare, profile.get("computed", {}).get(rule.name), now)
    n = 0
    cutoff = now - timedelta(seconds=rule.within_seconds) if rule.within_seconds is not None else None
    for e in profile.get("events", ()):
        if e.get("type") != rule.type or (rule.event is not None and e.get("event") != rule.event):
            continue
        if cutoff is not None and not (cutoff <= e["timestamp"] <= now):
            continue
        props = e.get("properties") or {}
        if all(compare_value(w.compare, props.get(w.name) if isinstance(props, dict) else None, now) for w in rule.where):
            n += 1
    return compare_value(rule.count, n, now)
