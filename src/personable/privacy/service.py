"""Consent as a service: set and read a profile's consents, ask the policy,
count refusals. The uses themselves (recommendations, models, exports) hold a
:class:`~.consent.ConsentPolicy` and the shared :class:`~.refusals.RefusalLog`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import NotFound, ValidationFailed
from ..ports import PROFILES_CHANGED, ProfilesChanged
from ..ports.consent import CONSENT_RECORD
from .consent import ConsentPolicy
from .refusals import RefusalLog

if TYPE_CHECKING:
    from datetime import datetime

    from ..clock import Clock
    from ..ports import Analytics, EventBus, ProfileReads
    from ..ports.consent import ConsentStore
    from .erasure import Erasure, Settle
    from .export import PersonalDataExport
    from .rekey import IdentityRekey
    from .retention import Retention

API = "api"
RELEASES = ("segment_sizes", "event_counts")


class PrivacyService:
    def __init__(self, policy: ConsentPolicy, clock: "Clock", store: "ConsentStore", online: "ProfileReads",
                 bus: "EventBus", refusals: RefusalLog, resolve: Callable[[str], str | None],
                 exporter: "PersonalDataExport", retention: "Retention", analytics: "Analytics",
                 segment_ids: Callable[[], list[str]], erasure: "Erasure", rekey: "IdentityRekey"):
        self.policy = policy
        self.clock = clock
        self.store = store
        self.online = online
        self.bus = bus
        self.refusals = refusals
        self.resolve = resolve
        self.exporter, self.retention_job = exporter, retention
        self.analytics, self.segment_ids = analytics, segment_ids
        self.erasure = erasure
        # The event log's waits (privacy/erasure.py's Settle): set by the Engine, which runs the log.
        self.settle: "Settle | None" = None
        self.identity_keys = rekey

    def _profile(self, identifier: str) -> str:
        pid = self.resolve(identifier)
        if not pid:
            raise NotFound(f"no profile for {identifier!r}")
        return pid

    def set_consent(self, identifier: str, purposes: Mapping[str, bool], source: str = API,
                    policy_version: str | None = None) -> dict[str, Any]:
        """Record a consent change for each purpose (``PUT /v1/profiles/{id}/consent``)."""
        import pyarrow as pa

        if not purposes:
            raise ValidationFailed("no purposes given")
        for purpose, granted in purposes.items():
            self.policy.check_purpose(purpose)
            if not isinstance(granted, bool):
                raise ValidationFailed(f"purposes.{purpose} must be true or false")
        pid = self._profile(identifier)
        now = self.clock.now()
        version = policy_version or self.policy.settings.policy_version
        message_id = f"{API}-{uuid.uuid4()}"
        rows = [[pid, p, g, now, source, message_id, API, version] for p, g in sorted(purposes.items())]
        self.store.record_consents(pa.table({c: [r[i] for r in rows] for i, c in enumerate(CONSENT_RECORD)},
                                            schema=_schema()))
        self.bus.publish(PROFILES_CHANGED, ProfilesChanged(touched=(pid,), watermark=now, origin="consent"))
        return self.consent(pid)

    def consent(self, identifier: str, history: int = 50) -> dict[str, Any]:
        """A profile's consents, the policy's verdict for every purpose, and the history of changes."""
        pid = self._profile(identifier)
        doc = self.online.profile(pid, 0)
        if doc is None:
            raise NotFound(f"no profile for {identifier!r}")
        return {"profile_id": pid, "policy_version": self.policy.settings.policy_version,
                "consents": doc.get("consents") or {},
                "verdicts": {p: self.policy.for_document(p, doc).as_dict() for p in self.policy.settings.purposes},
                "history": self.store.consent_history(pid, history)}

    def export(self, identifier: str) -> dict[str, Any]:
        """Everything held about a person, machine-readable (privacy/export.py)."""
        return self.exporter.bundle(identifier)

    def export_events(self, identifier: str) -> str:
        """The person's events as CSV."""
        return self.exporter.events_csv(identifier)

    def erase(self, identifiers: list[str], actor: str = "python") -> dict[str, Any]:
        """Erase these people from everything the project keeps; the certificate (privacy/erasure.py)."""
        return self.erasure.erase(list(identifiers), actor, self.settle)

    def resume_erasures(self) -> list[dict[str, Any]]:
        """Finish erasures a crash left unfinished."""
        return self.erasure.resume(self.settle)

    def rekey(self) -> dict[str, Any]:
        """A new identity key, and every stored digest wrapped under it (privacy/rekey.py)."""
        return self.identity_keys.rotate()

    def verify(self, values: list[str]) -> dict[str, Any]:
        """Where any of these values is still held (zero findings after an erasure)."""
        return self.erasure.verify(list(values))

    def retention(self, dry_run: bool = False) -> dict[str, Any]:
        """Expire what privacy.retention says has been kept long enough; the report says what went."""
        report = self.retention_job.run(dry_run)
        owners = report.pop("profiles")
        if owners:    # their documents' recent events lose what went; the merged-away resolve to survivors
            current = sorted({self.resolve(p) or p for p in owners})
            self.bus.publish(PROFILES_CHANGED, ProfilesChanged(touched=tuple(current), watermark=self.clock.now(),
                                                               origin="retention"))
        report["profiles_touched"] = len(owners)
        return report

    # -- anonymized aggregates ---------------------------------------------------------------------
    def release(self, report: str, epsilon: float, k: int | None = None) -> dict[str, Any]:
        """A report that may leave the project, with differential privacy (privacy/dp.py):
        ``segment_sizes`` (members per segment) or ``event_counts`` (people per track event)."""
        from .dp import PrivacyBudget, private_counts

        if report not in RELEASES:
            raise ValidationFailed(f"unknown report {report!r}; reports: {', '.join(RELEASES)}")
        k = self.policy.settings.dp.k if k is None else k
        if k < 0:
            raise ValidationFailed("k must be 0 or more")
        budget = PrivacyBudget(self.store, self.clock, self.policy.settings.dp.budget)
        counts = self._true_counts(report)
        # Paid before it is computed: a refused or failed release is never free to retry.
        left = budget.spend(epsilon, report, f"{len(counts)} cells, k={k}")
        cells = private_counts(counts, epsilon, k)
        return {"report": report, "released_at": self.clock.now().isoformat(), "epsilon": epsilon, "k": k,
                "mechanism": "geometric", "cells": cells,
                "suppressed": sorted(c for c, v in cells.items() if v is None),
                "budget": {"total": budget.budget, "spent": budget.budget - left, "left": left}}

    def budget(self) -> dict[str, Any]:
        from .dp import PrivacyBudget

        ledger = self.store.budget_ledger()
        total = self.policy.settings.dp.budget
        spent = sum(r["epsilon"] for r in ledger)
        return {"total": total, "spent": spent, "left": max(total - spent, 0.0), "ledger": ledger}

    def _true_counts(self, report: str) -> dict[str, int]:
        from ..tables import PROFILE_EVENTS as E, SEGMENT_MEMBERS as M

        if report == "segment_sizes":
            rows = self.analytics.execute(M.group_by("segment_id").aggregate(n=M.profile_id.nunique())).to_pylist()
            sizes = {r["segment_id"]: int(r["n"]) for r in rows}
            return {s: sizes.get(s, 0) for s in sorted(set(self.segment_ids()) | set(sizes))}
        cells = list(self.policy.settings.dp.events)
        tracks = E.filter((E.type == "track") & E.event.isin(cells))
        rows = self.analytics.execute(tracks.group_by("event").aggregate(n=tracks.profile_id.nunique())).to_pylist()
        found = {r["event"]: int(r["n"]) for r in rows}
        return {c: found.get(c, 0) for c in cells}

    def refusal_counts(self, since: "datetime | None" = None) -> list[dict[str, Any]]:
        from datetime import timezone

        if since is not None and since.tzinfo is None:    # times without a zone are UTC, as everywhere
            since = since.replace(tzinfo=timezone.utc)
        return self.refusals.counts(since)


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("profile_id", pa.string()), ("purpose", pa.string()), ("granted", pa.bool_()),
                      ("observed_at", pa.timestamp("us", tz="UTC")), ("source", pa.string()),
                      ("message_id", pa.string()), ("via", pa.string()), ("policy_version", pa.string())])
