"""Where a person's data lives in the offline store: every table is registered
here, as holding personal data (and how its rows are found) or as not.

An erasure deletes (or, for the audit log, redacts) exactly what this says,
so a table that is not registered would be forgotten. ``unregistered`` finds
such tables in a store's schema; a test runs it on every backend, and
``personable privacy verify`` warns of any it finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class PersonalTable:
    """How a table's rows of one person are found: any column below naming them."""

    profiles: tuple[str, ...] = ()
    """Columns holding a profile id (the person's current one or one merged into it)."""
    users: tuple[str, ...] = ()
    """Columns holding a userId."""
    anonymous: tuple[str, ...] = ()
    """Columns holding an anonymousId."""
    either: tuple[str, ...] = ()
    """Columns holding a userId or an anonymousId (an alias's previousId)."""
    user_lists: tuple[str, ...] = ()
    """Array columns of userIds."""
    identity: tuple[str, str] | None = None
    """(kind column, value column) of an identifier as the identity graph stores it (emails hashed)."""
    text: tuple[str, ...] = ()
    """JSON text (a raw record) that may name the person: matched as ``privacy/person_text.py`` says."""
    names: tuple[str, ...] = ()
    """Text naming what an action was on (an audit target): matched as a whole (``user_id:u1``)."""
    redact: bool = False
    """Redacted, not deleted (the audit log: its chain must stay whole)."""


PERSONAL: Mapping[str, PersonalTable] = {
    "events": PersonalTable(profiles=("profile_id",), users=("user_id",), anonymous=("anonymous_id",),
                            either=("previous_id",)),
    "quarantine": PersonalTable(text=("raw",)),
    "identities": PersonalTable(profiles=("profile_id",)),
    "profile_merges": PersonalTable(profiles=("from_profile", "into_profile")),
    "profile_redirects": PersonalTable(profiles=("from_profile", "to_profile")),
    "identity_conflicts": PersonalTable(identity=("kind", "value"), user_lists=("kept_users", "refused_users")),
    "profiles": PersonalTable(profiles=("profile_id",)),
    "profile_traits": PersonalTable(profiles=("profile_id",)),
    "profile_consents": PersonalTable(profiles=("profile_id",)),
    "consent_log": PersonalTable(profiles=("profile_id",)),
    "match_pairs": PersonalTable(profiles=("left_profile", "right_profile")),
    "identity_audit": PersonalTable(profiles=("from_profile", "into_profile")),
    "computed_traits": PersonalTable(profiles=("profile_id",)),
    "computed_history": PersonalTable(profiles=("profile_id",)),
    "segment_members": PersonalTable(profiles=("profile_id",)),
    "segment_history": PersonalTable(profiles=("profile_id",)),
    "recommendations": PersonalTable(profiles=("profile_id",)),
    "consent_refusals": PersonalTable(profiles=("profile_id",)),
    "audit_log": PersonalTable(text=("details",), names=("target",), redact=True),
}

# Tables that hold no one's data, and why.
NOT_PERSONAL: Mapping[str, str] = {
    "import_runs": "counts per imported file",
    "log_positions": "how far the event log is stored",
    "quality_reports": "aggregates per field and source",
    "resolution_runs": "a matching model's parameters and run totals",
    "segments": "segment definitions",
    "segment_sizes": "member counts over time",
    "model_versions": "model metadata and metrics (artifacts are files, purged by the erasure itself)",
    "model_monitoring": "drift and quality reports of models, aggregates",
    "items": "the product catalog",
    "events_minimized": "events kept only as counts, with no ids, context or content",
    "audit_checkpoints": "signed sequence numbers and macs of the audit chain",
    "dp_budget_ledger": "the epsilon spent per release",
    "erasures": "erasure requests: their subject is cleared once each is done (a digest stays)",
    "schema_migrations": "the schema's version",
    "identity_keys": "the ids of the keys the identity graph was keyed with, and when (never a secret)",
}

# Column names that mark a table as holding someone's data.
PERSON_COLUMNS = frozenset({"profile_id", "user_id", "anonymous_id", "previous_id", "from_profile", "to_profile",
                            "into_profile", "left_profile", "right_profile", "kept_users", "refused_users", "raw",
                            "traits", "context", "email", "phone", "snapshot", "target"})


def unregistered(columns: Mapping[str, list[str]]) -> list[str]:
    """Problems with a store's tables (name -> column names) against this registry: a table in neither
    list, a table in both, or a table called not personal that has a person column."""
    problems = []
    for table, cols in sorted(columns.items()):
        if table in PERSONAL and table in NOT_PERSONAL:
            problems.append(f"{table}: registered both as personal and as not")
        elif table not in PERSONAL and table not in NOT_PERSONAL:
            found = sorted(PERSON_COLUMNS & set(cols))
            problems.append(f"{table}: not registered in privacy/personal_data.py"
                            + (f" (it has person columns: {', '.join(found)})" if found else ""))
        elif table in NOT_PERSONAL and PERSON_COLUMNS & set(cols):
            problems.append(f"{table}: registered as not personal, but has person columns "
                            f"{', '.join(sorted(PERSON_COLUMNS & set(cols)))}")
    return problems
