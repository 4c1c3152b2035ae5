"""Retention: what has been kept long enough goes (GDPR's storage limitation).

Per event type or track event name (``privacy.retention.events``: ``page:
395`` keeps page views 13 months), expired events are anonymized -- moved
into ``events_minimized``, where they count without ids, context or content --
or deleted. Profiles keep their aggregates either way (counts and revenue
stay true). Quarantined records, refusals and minimized events have days of
their own. The audit log is never expired: it is the record of what was done.

A scheduled job under ``personable serve`` (daily) and ``personable privacy
retention`` run it; the report says what went, per rule and per table.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..events.spec import EVENT_TYPES

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from ..clock import Clock
    from ..ports.retention import RetentionStore
    from .config import RetentionSection

ANY = "*"


class Retention:
    def __init__(self, settings: "RetentionSection", clock: "Clock", store: "RetentionStore"):
        self.settings, self.clock, self.store = settings, clock, store

    def expired_events(self) -> "tuple[ir.Table, dict[str, ir.BooleanValue]] | None":
        """The stored events past their days (message ids), and the condition of each rule; None: none expire.
        An event name's rule comes before its type's, and that before "*"."""
        import ibis

        rules = self.settings.events
        if not any(days is not None for days in rules.values()):
            return None
        e = ibis.table({"message_id": "string", "type": "string", "event": "string", "timestamp": "timestamp('UTC')"},
                       name="events")
        now = self.clock.now()
        names = [k for k in rules if k != ANY and k not in EVENT_TYPES]
        types = [k for k in rules if k in EVENT_TYPES]
        by_name = (e.type == "track") & e.event.isin(names) if names else ibis.literal(False)
        by_type = e.type.isin(types) if types else ibis.literal(False)
        conditions: dict[str, ir.BooleanValue] = {}
        for key, days in rules.items():
            if days is None:
                continue
            old = e.timestamp < ibis.literal(now - timedelta(days=days), type="timestamp('UTC')")
            if key == ANY:
                conditions[key] = old & ~by_name & ~by_type
            elif key in EVENT_TYPES:
                conditions[key] = old & (e.type == key) & ~by_name
            else:
                conditions[key] = old & (e.type == "track") & (e.event == key)
        return e, conditions

    def run(self, dry_run: bool = False) -> dict[str, Any]:
        now = self.clock.now()
        report: dict[str, Any] = {"ran_at": now.isoformat(), "dry_run": dry_run, "mode": self.settings.mode,
                                  "events": {}, "tables": {}}
        owners: set[str] = set()
        expired = self.expired_events()
        if expired is not None:
            table, conditions = expired
            for key, condition in conditions.items():
                chosen = table.filter(condition).select("message_id")
                report["events"][key], touched = self.store.expire_events(chosen, self.settings.mode, now, dry_run)
                owners.update(touched)
        for name, days in (("quarantine", self.settings.quarantine_days),
                           ("consent_refusals", self.settings.refusals_days),
                           ("events_minimized", self.settings.minimized_days)):
            if days is not None:
                report["tables"][name] = self.store.expire_rows(name, now - timedelta(days=days), dry_run)
        report["removed"] = sum(report["events"].values()) + sum(report["tables"].values())
        report["profiles"] = sorted(owners)     # whose documents lose events (the caller re-projects them)
        return report
