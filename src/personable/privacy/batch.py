"""Consent for batch uses (model and recommender training, scoring): a job
runs as one use; every per-profile relation it reads is narrowed to the
profiles the policy allows, and the refused are recorded once for the job."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from ..ports import Analytics
    from .consent import ConsentPolicy
    from .refusals import RefusalLog


class BatchConsent:
    def __init__(self, policy: "ConsentPolicy", analytics: "Analytics", refusals: "RefusalLog"):
        self.policy, self.analytics, self.refusals = policy, analytics, refusals
        # The use running on this thread: what the policy is asked.
        self._use: contextvars.ContextVar[str | None] = contextvars.ContextVar("batch_use", default=None)

    @contextmanager
    def running(self, use: str) -> Iterator[None]:
        """Run a job as ``use``; nested in a job of the same use (a drift check
        retraining), it is the same job: its refusals are recorded once."""
        if self._use.get() == use:
            yield
            return
        from ..tables import PROFILES

        purpose = self.policy.purpose_for(use)
        judged = self.policy.verdicts(purpose, PROFILES)
        refused = self.analytics.execute(judged.filter(~judged.allowed))
        self.refusals.refused_many(use, purpose, zip(refused.column("profile_id").to_pylist(),
                                                     refused.column("reason").to_pylist()))
        token = self._use.set(use)
        try:
            yield
        finally:
            self._use.reset(token)

    def only_allowed(self, expr: "ir.Table", key: str = "profile_id") -> "ir.Table":
        """``expr`` (rows per profile, the profile in column ``key``) without the
        profiles refused for the running use; as it is outside a job."""
        use = self._use.get()
        if use is None:
            return expr
        from ..tables import PROFILES

        verdicts = self.policy.verdicts(self.policy.purpose_for(use), PROFILES)
        allowed = verdicts.filter(verdicts.allowed).select(_allowed_id=verdicts.profile_id)
        return expr.semi_join(allowed, expr[key] == allowed._allowed_id)
