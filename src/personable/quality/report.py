"""The data-quality report: completeness, validity, uniqueness and freshness
per field and per source, as Ibis expressions over the stored trait values.

The expressions are built over unbound tables with the store's schema and the
store runs them (``OfflineStore.run``), so the same report compiles for DuckDB
now and Spark later. Each report is kept; comparing with the previous one
shows regressions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from ..tables import EVENTS, PROFILES, TRAIT_VALUES
from .config import FieldSpec, QualityConfig, duration_seconds
from .rules import record_rules, violates

Run = Callable[[ir.Table], pa.Table]
ALL = "*"
# A drop larger than this (in share points) between two reports is a regression.
REGRESSION_DROP = 0.005


def _field_stats(spec: FieldSpec, now: datetime) -> ir.Table:
    t = TRAIT_VALUES
    obs = t.filter((t.field == spec.name) & (t.origin != "imputed") & t.value.notnull())
    rules = record_rules(spec)
    broken = [violates(r, spec, obs.value).fill_null(False) for r in rules]
    invalid = obs.origin == "invalid"
    for b in broken:
        invalid = invalid | b
    metrics: dict[str, Any] = {
        "observed": obs.count(),
        "invalid": invalid.sum(),
        "distinct": obs.value.nunique(),
        "newest": obs.observed_at.max(),
        "oldest": obs.observed_at.min(),
    }
    for rule, b in zip(rules, broken):
        metrics[f"rule_{rule.kind}"] = b.sum()
    fresh = spec.rule("freshness")
    if fresh:
        cutoff = ibis.literal(now - timedelta(seconds=duration_seconds(fresh.value) or 0))
        metrics["stale"] = (obs.observed_at < cutoff).sum()
    per_source = obs.group_by("source").aggregate(**metrics)
    overall = obs.aggregate(**metrics).mutate(source=ibis.literal(ALL))
    return per_source.union(overall.select(per_source.columns))


def _duplicates(spec: FieldSpec) -> ir.Table:
    """Rows whose value another profile also has, per source and overall."""
    t = TRAIT_VALUES
    obs = t.filter((t.field == spec.name) & (t.origin != "imputed") & t.value.notnull())
    counts = obs.group_by("value").aggregate(n=obs.profile_id.nunique())
    shared = obs.join(counts.filter(counts.n > 1), "value")
    per = shared.group_by("source").aggregate(duplicates=shared.count())
    return per.union(shared.aggregate(duplicates=shared.count()).mutate(source=ibis.literal(ALL)).select(per.columns))


def _records_per_source() -> ir.Table:
    """Profiles holding any observed trait, per source and overall: anonymous
    visitors nobody has described yet are not customer records with gaps."""
    t = TRAIT_VALUES
    t = t.filter(t.origin != "imputed")
    per = t.group_by("source").aggregate(records=t.profile_id.nunique())
    overall = t.aggregate(records=t.profile_id.nunique()).mutate(source=ibis.literal(ALL))
    return per.union(overall.select(per.columns))


def _profiles() -> ir.Table:
    return PROFILES.aggregate(profiles=PROFILES.count())


def _imputed() -> ir.Table:
    t = TRAIT_VALUES
    imp = t.filter(t.origin == "imputed")
    return imp.group_by("field").aggregate(imputed=imp.count())


def _currency() -> ir.Table:
    e = EVENTS.filter(EVENTS.revenue.notnull())
    return e.aggregate(with_revenue=e.count(),
                       without_rate=e.revenue_reporting.isnull().sum(),
                       currencies=e.currency.nunique())


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def build_report(run: Run, quality: QualityConfig, now: datetime, fields: list[str] | None = None,
                 quarantine: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Compute the report with ``run`` (executes an Ibis expression, returns Arrow)."""
    specs = [f for f in quality.fields if fields is None or f.name in fields]
    records = {r["source"]: r["records"] for r in run(_records_per_source()).to_pylist()}
    imputed = {r["field"]: r["imputed"] for r in run(_imputed()).to_pylist()}
    rows = []
    for spec in specs:
        dupes = {r["source"]: r["duplicates"] for r in run(_duplicates(spec)).to_pylist()}
        stats = {r["source"]: r for r in run(_field_stats(spec, now)).to_pylist()}
        for source in sorted(records, key=lambda s: (s != ALL, s or "")):
            s = stats.get(source) or {}
            observed = int(s.get("observed") or 0)
            if source != ALL and observed == 0:
                continue
            total = int(records[source] or 0)
            invalid = int(s.get("invalid") or 0)
            row = {
                "field": spec.name, "source": source, "records": total, "observed": observed,
                "imputed": imputed.get(spec.name, 0) if source == ALL else None,
                "completeness": _share(observed, total),
                "invalid": invalid, "validity": _share(observed - invalid, observed),
                "distinct": int(s.get("distinct") or 0), "duplicates": int(dupes.get(source, 0)),
                "uniqueness": _share(int(s.get("distinct") or 0), observed),
                "newest": s["newest"].isoformat() if s.get("newest") else None,
                "oldest": s["oldest"].isoformat() if s.get("oldest") else None,
                "rule_failures": {k[5:]: int(v or 0) for k, v in s.items() if k.startswith("rule_") and v},
            }
            if "stale" in s:
                row["stale"] = int(s["stale"] or 0)
                row["freshness"] = _share(observed - row["stale"], observed)
            row["problems"] = _problems(spec, row)
            rows.append(row)
    money = run(_currency()).to_pylist()[0]
    return {
        "run_at": now.isoformat(),
        "profiles": int(run(_profiles()).to_pylist()[0]["profiles"] or 0),
        "profiles_with_traits": int(records.get(ALL, 0) or 0),
        "fields": rows,
        "revenue": {k: int(v or 0) for k, v in money.items()},
        "quarantine": quarantine or [],
    }


def _problems(spec: FieldSpec, row: dict[str, Any]) -> list[str]:
    """Plain words for what is wrong with a field, for people reading the report."""
    out = []
    if spec.rule("required") and row["observed"] < row["records"]:
        out.append(f"{row['records'] - row['observed']} of {row['records']} records have no {spec.name}")
    if row["invalid"]:
        rules = ", ".join(f"{k}: {v}" for k, v in row["rule_failures"].items())
        out.append(f"{row['invalid']} invalid value(s)" + (f" ({rules})" if rules else " (could not be standardized)"))
    if spec.rule("unique") and row["duplicates"]:
        out.append(f"{row['duplicates']} record(s) share a {spec.name} with another profile")
    freshness = spec.rule("freshness")
    if row.get("stale") and freshness is not None:
        out.append(f"{row['stale']} value(s) older than {freshness.value}")
    return out


METRICS = ("completeness", "validity", "uniqueness", "freshness")


def regressions(current: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Metrics that dropped since the previous report."""
    if not previous:
        return []
    before = {(r["field"], r["source"]): r for r in previous.get("fields", [])}
    out = []
    for row in current["fields"]:
        old = before.get((row["field"], row["source"]))
        if not old:
            continue
        for metric in METRICS:
            now_v, old_v = row.get(metric), old.get(metric)
            if now_v is not None and old_v is not None and old_v - now_v > REGRESSION_DROP:
                out.append({"field": row["field"], "source": row["source"], "metric": metric,
                            "before": old_v, "now": now_v})
    return out
