"""Validation rules as Ibis expressions.

One definition serves both places a rule runs: on ingest (compiled to SQL over
the batch's trait values, failing records go to quarantine) and in the quality
report (over what is stored). Because they are Ibis expressions they compile
for DuckDB here and for Spark or a warehouse later, unchanged.

A rule here is a *violation* predicate over a string column holding the
field's standardized value; NULL (missing) values never violate a record rule
(completeness is measured separately, by the ``required`` rule in the report).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir

from .config import RECORD_RULES, FieldSpec, Rule

_CASTS = {"number": "float64", "integer": "int64", "date": "date"}


def _bound(value: Any, spec: FieldSpec) -> tuple[str, Any]:
    """How to compare against a min/max: as a date or as a number."""
    if value == "today":
        return "date", ibis.today()
    if isinstance(value, str):
        try:
            return "date", ibis.literal(date.fromisoformat(value))
        except ValueError:
            return "number", ibis.literal(float(value))
    return "number", ibis.literal(float(value))


def violates(rule: Rule, spec: FieldSpec, value: ir.StringValue) -> ir.BooleanValue:
    """True where ``value`` breaks ``rule`` (never for a NULL value)."""
    present = value.notnull()
    if rule.kind == "type":
        if rule.value == "string":
            return ibis.literal(False)
        if rule.value == "boolean":
            return present & ~value.lower().isin(["true", "false"])
        return present & value.try_cast(_CASTS[rule.value]).isnull()
    if rule.kind in ("min", "max"):
        kind, bound = _bound(rule.value, spec)
        typed = value.try_cast("date" if kind == "date" else "float64")
        return (typed < bound) if rule.kind == "min" else (typed > bound)
    if rule.kind == "pattern":
        return present & ~value.re_search(f"^(?:{rule.value})$")
    if rule.kind == "allowed":
        return present & ~value.isin(list(rule.value))
    raise ValueError(f"{rule.kind} is not a per-record rule")


def describe(rule: Rule) -> str:
    """The words a quarantined record carries for a rule it failed."""
    v = rule.value
    return {
        "type": f"must be of type {v}",
        "min": f"must be at least {v}",
        "max": f"must be at most {v}",
        "pattern": f"must match the pattern {v}",
        "allowed": f"must be one of {', '.join(map(str, v))}" if isinstance(v, list) else "",
    }.get(rule.kind, rule.kind)


def record_rules(spec: FieldSpec) -> list[Rule]:
    return [r for r in spec.rules if r.kind in RECORD_RULES]


def batch_violations(specs: list[FieldSpec], table: str = "_tv") -> ir.Table | None:
    """An expression listing ``(seq, field, rule, problem)`` for every broken record
    rule over a table ``(seq, field, value)`` of a batch's standardized values."""
    t = ibis.table({"seq": "int64", "field": "string", "value": "string"}, name=table)
    parts = []
    for spec in specs:
        for rule in record_rules(spec):
            hits = t.filter((t.field == spec.name) & violates(rule, spec, t.value).fill_null(False))
            parts.append(hits.select(
                seq=hits.seq, field=hits.field, rule=ibis.literal(rule.kind),
                problem=ibis.literal(f"rule {rule.kind} failed: ") + ibis.literal(describe(rule) + ", got ") + hits.value.substr(0, 60),
            ))
    if not parts:
        return None
    return ibis.union(*parts) if len(parts) > 1 else parts[0]
