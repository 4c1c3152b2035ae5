"""Segment rules compiled to Ibis expressions over the store's tables.

A rule becomes a boolean expression over ``profiles``; the members of a
segment are the profiles where it holds. Sub-conditions become ``IN``
sub-queries over trait values, computed traits, events (attributed to the
current profile through merges) and other segments' members. Values from a rule
reach the query as literals Ibis quotes itself: nothing is pasted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from .. import tables
from .rules import (PROFILE_COLUMNS, All, Any_, Compare, ComputedCond, EventCond, InSegment, Not, Rule, TraitCond,
                    Scalar, compare_value)

PROFILES = tables.PROFILES
TRAITS = tables.TRAIT_VALUES
COMPUTED = tables.COMPUTED_VALUES
EVENTS = tables.PROFILE_EVENTS
MEMBERS = tables.SEGMENT_MEMBERS

@dataclass(frozen=True)
class Tables:
    """The tables a rule reads. The full refresh reads the store's; realtime
    evaluation reads small copies holding only a batch's profiles (``REALTIME``),
    so twenty segments cost one scan of the events, not twenty."""

    profiles: ir.Table = PROFILES
    traits: ir.Table = TRAITS
    computed: ir.Table = COMPUTED
    events: ir.Table = EVENTS
    members: ir.Table = MEMBERS


STORE = Tables()
REALTIME = Tables(profiles=ibis.table(PROFILES.schema(), name="_rt_profiles"),
                  traits=ibis.table(TRAITS.schema(), name="_rt_traits"),
                  computed=ibis.table(COMPUTED.schema(), name="_rt_computed"),
                  # the realtime copy holds only the columns rules read
                  events=ibis.table({c: EVENTS.schema()[c] for c in ("profile_id", "type", "event", "timestamp",
                                                                     "properties")}, name="_rt_events"),
                  members=ibis.table(MEMBERS.schema(), name="_rt_members"))


# "Now" is a time, or -- for SQL compiled once and run many times -- a scalar
# expression read from a table (``CLOCK``), so the text of the query does not
# change as time passes.
Now = Union[datetime, ir.TimestampScalar]
CLOCK = ibis.table({"now": "timestamp('UTC')"}, name="_rt_clock")


def clock_now() -> ir.TimestampScalar:
    return CLOCK.now.max()


def _now(now: Now) -> ir.TimestampValue:
    return ibis.literal(now) if isinstance(now, datetime) else now


def _ago(now: Now, seconds: int) -> ir.TimestampValue:
    if isinstance(now, datetime):
        return ibis.literal(now - timedelta(seconds=seconds))
    return now - ibis.interval(seconds=seconds)


def _text_compare(c: Compare, text: ir.StringValue, number: ir.FloatingValue | None = None) -> ir.BooleanValue:
    """A comparison on a value held as text (traits, computed traits), or on a
    number column given as both its text and its value."""
    number = text.try_cast("float64") if number is None else number
    if c.op == "exists":
        return text.notnull() if c.value else text.isnull()
    if c.op in ("gt", "gte", "lt", "lte"):
        bound = ibis.literal(float(c.value))
        return {"gt": number > bound, "gte": number >= bound, "lt": number < bound, "lte": number <= bound}[c.op]
    if c.op == "between":
        return number.between(ibis.literal(c.value[0]), ibis.literal(c.value[1]))
    if c.op == "contains":
        return text.contains(ibis.literal(c.value))
    if c.op == "starts_with":
        return text.startswith(ibis.literal(c.value))
    targets = c.value if c.op in ("in", "not_in") else (c.value,)
    hits = [_equals(text, number, t) for t in targets]
    hit = hits[0]
    for h in hits[1:]:
        hit = hit | h
    hit = hit.fill_null(False)
    return (hit if c.op in ("eq", "in") else ~hit) & text.notnull()


def _equals(text: ir.StringValue, number: ir.FloatingValue, target: Scalar) -> ir.BooleanValue:
    if isinstance(target, bool):
        return text == ibis.literal("true" if target else "false")
    if isinstance(target, (int, float)):
        return number == ibis.literal(float(target))
    return text == ibis.literal(str(target))


def _column_compare(c: Compare, col: ir.Value, kind: str, now: Now) -> ir.BooleanValue:
    """A comparison on a typed profile column."""
    if c.op == "exists":
        return col.notnull() if c.value else col.isnull()
    if kind == "time":
        if c.op not in ("within", "older_than"):
            return ibis.literal(False)
        cutoff = _ago(now, c.value)
        return (col >= cutoff if c.op == "within" else col < cutoff).fill_null(False)
    if kind == "string":
        return _text_compare(c, col.cast("string"))
    return _text_compare(c, col.cast("string"), col.cast("float64"))


def _count_holds(c: Compare, n: ir.IntegerValue) -> ir.BooleanValue:
    value = c.value
    if c.op == "between":
        return n.between(ibis.literal(value[0]), ibis.literal(value[1]))
    bound = ibis.literal(value)
    return {"eq": n == bound, "ne": n != bound, "gt": n > bound, "gte": n >= bound,
            "lt": n < bound, "lte": n <= bound}[c.op]


def _property(e: ir.Table, name: str, c: Compare) -> ir.BooleanValue:
    """A comparison on one event property (JSON), with the text / number
    semantics of traits: numbers as numbers, the rest as text."""
    value = e.properties[name]
    raw = value.cast("string")
    text = value.str.fill_null(raw)  # a JSON string unwrapped, else the JSON text of the value
    # An absent property and a JSON null are both "no value".
    text = ibis.cases((value.isnull() | (raw == "null"), ibis.null("string")), else_=text)
    return _text_compare(c, text)


def compile_rule(rule: Rule, now: Now, p: ir.Table = PROFILES, t: Tables = STORE) -> ir.BooleanValue:
    """The rule as a boolean expression over ``profiles`` (``p``)."""
    if isinstance(rule, All):
        expr = compile_rule(rule.items[0], now, p, t)
        for r in rule.items[1:]:
            expr = expr & compile_rule(r, now, p, t)
        return expr
    if isinstance(rule, Any_):
        expr = compile_rule(rule.items[0], now, p, t)
        for r in rule.items[1:]:
            expr = expr | compile_rule(r, now, p, t)
        return expr
    if isinstance(rule, Not):
        return ~compile_rule(rule.item, now, p, t)
    if isinstance(rule, InSegment):
        return p.profile_id.isin(t.members.filter(t.members.segment_id == rule.segment_id).profile_id)
    if isinstance(rule, TraitCond):
        # Values that could not be read (origin invalid) are not compared; imputed ones are.
        tr = t.traits
        usable = tr.filter((tr.field == rule.name) & tr.value.notnull() & (tr.origin != "invalid"))
        return _holds_on_rows(rule.compare, p, usable, tr.value)
    if isinstance(rule, ComputedCond):
        kind = PROFILE_COLUMNS.get(rule.name)
        if kind is not None:
            return _column_compare(rule.compare, p[rule.name], kind, now).fill_null(False)
        c = t.computed
        return _holds_on_rows(rule.compare, p, c.filter((c.key == rule.name) & c.value.notnull()), c.value)
    return _event_condition(rule, now, p, t.events)


def _holds_on_rows(c: Compare, p: ir.Table, rows: ir.Table, value: ir.StringValue) -> ir.BooleanValue:
    """For a field stored as rows (one per profile): a profile without a row has
    no value, so only ``exists: false`` can hold for it."""
    if c.op == "exists":
        present = p.profile_id.isin(rows.profile_id)
        return present if c.value else ~present
    value = rows[value.get_name()]
    return p.profile_id.isin(rows.filter(_text_compare(c, value)).profile_id)


def _event_condition(rule: EventCond, now: Now, p: ir.Table, e: ir.Table = EVENTS) -> ir.BooleanValue:
    cond = e.type == rule.type
    if rule.event is not None:
        cond = cond & (e.event == rule.event)
    if rule.within_seconds is not None:
        cond = cond & (e.timestamp >= _ago(now, rule.within_seconds)) & (e.timestamp <= _now(now))
    for w in rule.where:
        cond = cond & _property(e, w.name, w.compare).fill_null(False)
    matching = e.filter(cond)
    counts = matching.group_by("profile_id").aggregate(n=matching.count())
    # Profiles with no matching event have a count of 0, which some comparisons accept.
    if compare_value(rule.count, 0):
        return ~p.profile_id.isin(counts.filter(~_count_holds(rule.count, counts.n)).profile_id)
    return p.profile_id.isin(counts.filter(_count_holds(rule.count, counts.n)).profile_id)


def members_expr(rule: Rule, now: Now, t: Tables = STORE) -> ir.Table:
    """The ids of the profiles in the segment, read from the tables ``t``
    (``REALTIME``: only the profiles whose copies the caller prepared)."""
    p = t.profiles
    return p.filter(compile_rule(rule, now, p, t)).select("profile_id")
