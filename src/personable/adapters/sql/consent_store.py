"""Consent records and refusals on any SQL store (``ConsentStore``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import pyarrow as pa

from ...ports.consent import CONSENT_RECORD, REFUSAL
from .session import SqlSession
from .store_base import SqlStoreBase
from .upsert import upsert


class ConsentStoreMixin(SqlStoreBase):
    def record_consents(self, rows: pa.Table) -> None:
        cols = ", ".join(CONSENT_RECORD)
        with self._writing() as db:
            db.put("_consent_new", rows.select(list(CONSENT_RECORD)))
            db.execute(f"INSERT INTO consent_log ({cols}) SELECT {cols} FROM _consent_new")
            db.execute(upsert("profile_consents", CONSENT_RECORD, ["profile_id", "purpose"],
                              f"SELECT {cols} FROM _consent_new",
                              where="excluded.observed_at >= profile_consents.observed_at"))
            # The projection's crash recovery finds changed profiles by updated_at.
            db.execute("""UPDATE profiles SET updated_at = n.at
                          FROM (SELECT profile_id, max(observed_at) AS at FROM _consent_new GROUP BY profile_id) n
                          WHERE profiles.profile_id = n.profile_id
                            AND (profiles.updated_at IS NULL OR n.at > profiles.updated_at)""")

    def consent_history(self, profile_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self._session().rows(f"""
            SELECT {', '.join(CONSENT_RECORD)} FROM consent_log WHERE profile_id = ?
            ORDER BY observed_at DESC, purpose LIMIT ?""", [profile_id, limit])
        out = []
        for r in rows:
            item = dict(zip(CONSENT_RECORD, r))
            item["observed_at"] = item["observed_at"].isoformat() if item["observed_at"] else None
            out.append(item)
        return out

    def append_refusals(self, rows: pa.Table) -> None:
        cols = ", ".join(REFUSAL)
        with self._writing() as db:
            db.put("_refusals_new", rows.select(list(REFUSAL)))
            db.execute(f"INSERT INTO consent_refusals ({cols}) SELECT {cols} FROM _refusals_new")

    def refusals_of(self, profile_ids: list[str]) -> list[dict[str, Any]]:
        db = self._session()
        rows = db.rows(f"""SELECT {', '.join(REFUSAL)} FROM consent_refusals
                           WHERE {db.in_list('profile_id', 'CAST(? AS TEXT[])')} ORDER BY refused_at""", [profile_ids])
        return [{**dict(zip(REFUSAL, r)), "refused_at": r[0].isoformat()} for r in rows]

    def _hold_ledger(self, db: SqlSession) -> None:
        """Hold other spenders off until the transaction ends (a backend with many writers)."""

    def spend_budget(self, at: datetime, release: str, epsilon: float, detail: str,
                     affordable: Callable[[float], None]) -> None:
        with self._writing() as db:
            self._hold_ledger(db)
            affordable(float(db.rows("SELECT coalesce(sum(epsilon), 0) FROM dp_budget_ledger")[0][0]))
            db.execute("INSERT INTO dp_budget_ledger (spent_at, release_kind, epsilon, detail) VALUES (?, ?, ?, ?)",
                       [at, release, epsilon, detail])

    def budget_ledger(self) -> list[dict[str, Any]]:
        rows = self._session().rows("SELECT spent_at, release_kind, epsilon, detail FROM dp_budget_ledger "
                                    "ORDER BY spent_at")
        return [{"spent_at": a.isoformat(), "release": r, "epsilon": float(e), "detail": d} for a, r, e, d in rows]

    def refusal_counts(self, since: datetime | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE refused_at >= ?", [since]) if since else ("", [])
        rows = self._session().rows(f"""
            SELECT use, purpose, reason, count(*) FROM consent_refusals {where}
            GROUP BY use, purpose, reason ORDER BY use, purpose, reason""", params)
        return [{"use": u, "purpose": p, "reason": r, "count": int(n)} for u, p, r, n in rows]
