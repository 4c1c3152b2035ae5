"""Quality jobs on a project: the report (with history), re-standardizing what
is stored, and filling missing values. Reached as ``engine.quality``."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import TYPE_CHECKING, Any

import phonenumbers

from ..errors import ValidationFailed
from ..ports import PROFILES_CHANGED, ProfilesChanged
from .apply import standardize_values
from .report import build_report, regressions
from .standardize import standardize

if TYPE_CHECKING:
    from ..clock import Clock
    from ..config import Config
    from ..ports import Analytics, EventBus, QualityStore


class QualityService:
    def __init__(self, config: "Config", clock: "Clock", analytics: "Analytics", store: "QualityStore",
                 bus: "EventBus"):
        self.config, self.clock, self.analytics, self.store, self.bus = config, clock, analytics, store, bus
        self._config = config.quality

    def report(self, fields: list[str] | None = None, save: bool = True) -> dict[str, Any]:
        """Completeness, validity, uniqueness and freshness per field and source.

        Saved reports form a history; ``regressions`` lists what got worse since
        the previous one."""
        unknown = [f for f in fields or [] if self._config.field(f) is None]
        if unknown:
            raise ValidationFailed(f"not configured under quality.fields: {', '.join(unknown)}")
        store = self.store
        report = build_report(self.analytics.execute, self._config, self.clock.now(), fields,
                              quarantine=store.quarantine_summary())
        previous = store.quality_reports(limit=1)
        report["previous_run_at"] = previous[0]["run_at"] if previous else None
        report["regressions"] = regressions(report, previous[0] if previous else None)
        if save:
            report["id"] = store.save_quality_report(report)
        return report

    def history(self, limit: int = 10) -> list[dict[str, Any]]:
        return self.store.quality_reports(limit)

    def clean(self) -> dict[str, Any]:
        """Apply today's standardization settings to every stored trait, and the
        currency rates to every stored amount."""
        store, now = self.store, self.clock.now()
        results = []
        for spec in self._config.fields:
            if spec.standardize is None:
                continue
            values = store.stored_trait_values(spec.name, spec.region_from)
            decided = standardize_values([(spec.name, raw, hint) for raw, hint in values], self._config,
                                         self.config.identity.default_region)
            rows = [(raw, hint, value, status) for _f, raw, hint, value, _p, status, _q in decided]
            result = store.restandardize(spec.name, spec.region_from, rows, now)
            results.append({"field": spec.name, "values": result["values"], "records": result["records"],
                            "changed_profiles": len(result["changed_profiles"])})
        money = store.recompute_revenue(self._config.reporting_currency, self._config.rates(), now, self.config.order_event)
        self.bus.publish(PROFILES_CHANGED, ProfilesChanged(None, origin="quality"))
        return {"fields": results, "revenue_changed_profiles": len(money["changed_profiles"])}

    def impute(self) -> dict[str, Any]:
        """Fill missing values by each field's policy; imputed values are marked
        ``origin: imputed`` and give way to the first real observation."""
        store, now = self.store, self.clock.now()
        out = []
        for spec in self._config.fields:
            policy = spec.missing
            if policy.kind == "leave":
                continue
            derived = None
            constant: Any = None
            if policy.kind in ("constant", "unknown"):
                constant = policy.constant
            elif policy.kind in ("median", "mode"):
                constant = self._central(spec.name, policy.kind)
                if constant is None:
                    out.append({"field": spec.name, "policy": policy.kind, "filled": 0,
                                "note": "no observed values to take a " + policy.kind + " of"})
                    continue
            else:
                derived = self._derive(spec.name, policy.derive, policy.source)
            filled = store.impute(spec.name, policy.kind, constant, derived, now)
            out.append({"field": spec.name, "policy": policy.kind, "filled": filled,
                        **({"value": constant} if derived is None else {"from": policy.source})})
        self.bus.publish(PROFILES_CHANGED, ProfilesChanged(None, origin="quality"))
        return {"fields": out}

    def _central(self, field: str, kind: str) -> Any:
        values = self.store.observed_values(field).to_pylist()
        if kind == "mode":
            counts = Counter(v["value"] for v in values)
            return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counts else None
        numbers = []
        for v in values:
            try:
                numbers.append(float(v["value"]))
            except ValueError:
                continue
        if not numbers:
            return None
        m = statistics.median(numbers)
        return int(m) if m.is_integer() else m

    def _derive(self, field: str, how: str | None, source: str | None) -> list[tuple[str, Any]]:
        pairs = self.store.missing_with(field, source or "")
        if how == "copy":
            return pairs
        out = []
        for profile_id, phone in pairs:  # country_from_phone
            result = standardize("phone", phone, {"region": self.config.identity.default_region})
            if result.value:
                region = phonenumbers.region_code_for_number(phonenumbers.parse(result.value))
                if region and region != "ZZ":
                    out.append((profile_id, region))
        return out
