"""Request-path reads (the OnlineStore port) on the embedded store."""

from __future__ import annotations

from typing import Any

import orjson

from ...identity.identifiers import normalize_identifier, sha256_hex
from ...identity.stitcher import ANON, USER

# The order in which a bare identifier is tried when its kind is not given.
_BARE_KINDS = (USER, ANON)


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


class ProfileReads:
    """Mixin for DuckDBStore: needs ``self.cursor()``."""

    def resolve(self, identifier: str, kind: str | None = None, region: str = "US") -> str | None:
        """Any identifier -> the current profile id (old, merged ids redirect).

        ``identifier`` may be a profile id, a userId, an anonymousId, or an
        ``email:``/``phone:`` prefixed raw value (normalized and hashed here).
        """
        con = self.cursor()
        if kind is None and ":" in identifier:
            prefix, rest = identifier.split(":", 1)
            if prefix in ("email", "phone", "user_id", "anonymous_id", "profile"):
                kind, identifier = prefix, rest
        if kind in ("email", "phone"):
            norm = normalize_identifier(kind, identifier, region, frozenset())
            if norm is None:
                return None
            kinds, value = (kind,), sha256_hex(norm)
        elif kind == "profile":
            kinds, value = (), identifier
        else:
            kinds, value = ((kind,) if kind else _BARE_KINDS), identifier
        for k in kinds:
            rows = con.execute("SELECT profile_id FROM identities WHERE kind = ? AND value = ?", [k, value]).fetchall()
            if rows:
                return rows[0][0]
        if kind in (None, "profile"):
            # A scalar query always returns one row; NULL when neither table knows the id.
            return con.execute(
                """SELECT coalesce((SELECT to_profile FROM profile_redirects WHERE from_profile = $id),
                                   (SELECT profile_id FROM profiles WHERE profile_id = $id))""",
                {"id": value}).fetchall()[0][0]
        return None

    def profile(self, profile_id: str, recent_events: int = 20) -> dict[str, Any] | None:
        con = self.cursor()
        row = con.execute(
            """SELECT profile_id, created_at, first_seen, last_seen, event_count, session_count, page_count,
                      order_count, revenue, last_device, last_channel, updated_at
               FROM profiles WHERE profile_id = ?""", [profile_id]).fetchall()
        row = row[0] if row else None
        if row is None:
            return None
        keys = ("profile_id", "created_at", "first_seen", "last_seen", "event_count", "session_count",
                "page_count", "order_count", "revenue", "last_device", "last_channel", "updated_at")
        base = dict(zip(keys, row))
        computed = {k: _iso(base[k]) for k in keys[2:11]}
        traits, trait_meta = {}, {}
        for key, value, observed, source in con.execute(
                "SELECT key, value, observed_at, source FROM profile_traits WHERE profile_id = ? ORDER BY key",
                [profile_id]).fetchall():
            traits[key] = _json(value)
            trait_meta[key] = {"observed_at": _iso(observed), "source": source}
        identities = [
            {"kind": k, "value": v, "first_seen": _iso(fs), "source": s}
            for k, v, fs, s in con.execute(
                "SELECT kind, value, first_seen, source FROM identities WHERE profile_id = ? ORDER BY first_seen, kind",
                [profile_id]).fetchall()
        ]
        consents = {
            purpose: {"granted": granted, "observed_at": _iso(at), "source": source}
            for purpose, granted, at, source in con.execute(
                "SELECT purpose, granted, observed_at, source FROM profile_consents WHERE profile_id = ? ORDER BY purpose",
                [profile_id]).fetchall()
        }
        merged_from = [r[0] for r in con.execute(
            "SELECT from_profile FROM profile_redirects WHERE to_profile = ? ORDER BY from_profile", [profile_id]).fetchall()]
        events = [
            {"messageId": mid, "type": t, "event": e, "name": n, "timestamp": _iso(ts),
             "properties": _json(props), "userId": uid, "anonymousId": aid}
            for mid, t, e, n, ts, props, uid, aid in con.execute(
                """SELECT message_id, type, event, name, timestamp, properties, user_id, anonymous_id
                   FROM events WHERE profile_id IN (SELECT unnest(?::VARCHAR[]))
                   ORDER BY timestamp DESC LIMIT ?""", [[profile_id, *merged_from], recent_events]).fetchall()
        ]
        return {
            "profile_id": profile_id,
            "created_at": _iso(base["created_at"]),
            "traits": traits,
            "trait_sources": trait_meta,
            "computed": computed,
            "identities": identities,
            "consents": consents,
            "merged_from": merged_from,
            "recent_events": events,
        }
