"""Profile documents built from the store, and request-path reads straight from
it (the OnlineStore port when ``store.online`` is ``duckdb://``).

The document is built in one SQL statement for any set of profiles: the
materialized online store is filled from here after each batch, so both serve
exactly the same shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from ...identity.lookup import PROFILE, candidate_keys
from ...profiles.document import RECENT_EVENTS

if TYPE_CHECKING:
    from ...identity.keyed import IdentityHasher


def _ts(expr: str) -> str:
    return f"strftime({expr}, '%Y-%m-%dT%H:%M:%S.%fZ')"


DOCS_SQL = f"""
WITH t AS (SELECT DISTINCT profile_id FROM _doc_ids),
traits AS (
    SELECT profile_id, json_group_object(key, value) AS traits,
           json_group_object(key, {{'observed_at': {_ts('observed_at')}, 'source': source, 'origin': origin,
                                    'observed': raw_value}}) AS sources
    FROM profile_traits JOIN t USING (profile_id) GROUP BY profile_id
), ids AS (
    -- Sorted lists rather than ordered aggregates (list(x ORDER BY ...)): DuckDB
    -- sorts each group of an ordered aggregate on its own, 3-4x slower over 79k
    -- profiles. The struct's leading fields are the sort key.
    SELECT profile_id, list_transform(list_sort(list({{'at': first_seen, 'kind': kind, 'value': value,
               'identity': {{'kind': kind, 'value': value, 'first_seen': {_ts('first_seen')}, 'source': source}}}})),
               lambda x: x.identity) AS identities
    FROM identities JOIN t USING (profile_id) GROUP BY profile_id
), consents AS (
    SELECT profile_id, json_group_object(purpose, {{'granted': granted, 'observed_at': {_ts('observed_at')}, 'source': source}}) AS consents
    FROM profile_consents JOIN t USING (profile_id) GROUP BY profile_id
), extra AS (
    SELECT profile_id, json_group_object(key, value) AS computed FROM computed_traits JOIN t USING (profile_id)
    GROUP BY profile_id
), segs AS (
    SELECT profile_id, list_sort(list({{'segment_id': segment_id, 'entered_at': {_ts('entered_at')}}})) AS segments
    FROM segment_members JOIN t USING (profile_id) GROUP BY profile_id
), merged AS (
    SELECT to_profile AS profile_id, list_sort(list(from_profile)) AS merged_from
    FROM profile_redirects JOIN t ON t.profile_id = to_profile GROUP BY to_profile
), recent AS (
    -- Top-N per profile (newest first, ties by messageId) without sorting each whole history.
    SELECT pid AS profile_id,
           arg_max({{'messageId': message_id, 'type': type, 'event': event, 'name': name,
                     'timestamp': {_ts('timestamp')}, 'properties': properties,
                     'userId': user_id, 'anonymousId': anonymous_id}}, (timestamp, message_id), {RECENT_EVENTS}) AS events
    FROM (SELECT e.*, coalesce(r.to_profile, e.profile_id) AS pid
          FROM events e LEFT JOIN profile_redirects r ON r.from_profile = e.profile_id)
    WHERE pid IN (SELECT profile_id FROM t)
    GROUP BY pid
)
SELECT p.profile_id, to_json({{
    'profile_id': p.profile_id,
    'created_at': {_ts('p.created_at')},
    'updated_at': {_ts('p.updated_at')},
    'traits': coalesce(traits.traits, '{{}}'::JSON),
    'trait_sources': coalesce(traits.sources, '{{}}'::JSON),
    'computed': CASE WHEN extra.computed IS NULL THEN basics ELSE json_merge_patch(basics, extra.computed) END,
    'segments': coalesce(segs.segments, []),
    'identities': coalesce(ids.identities, []),
    'consents': coalesce(consents.consents, '{{}}'::JSON),
    'merged_from': coalesce(merged.merged_from, []::VARCHAR[]),
    'recent_events': coalesce(recent.events, [])
}})::VARCHAR AS doc
FROM (SELECT p.*, to_json({{'first_seen': {_ts('p.first_seen')}, 'last_seen': {_ts('p.last_seen')},
                 'event_count': p.event_count, 'session_count': p.session_count, 'page_count': p.page_count,
                 'order_count': p.order_count,
                 -- never a non-finite number in a document (JSON has none; readers fail on it)
                 'revenue': CASE WHEN isfinite(p.revenue) THEN p.revenue END,
                 'last_device': p.last_device, 'last_channel': p.last_channel}}) AS basics
      -- merged only where there are computed traits: parsing both sides of a
      -- merge for every profile cost more than building the rest of it
      FROM profiles p JOIN t USING (profile_id)) p
LEFT JOIN traits USING (profile_id) LEFT JOIN ids USING (profile_id) LEFT JOIN consents USING (profile_id)
LEFT JOIN merged USING (profile_id) LEFT JOIN recent USING (profile_id)
LEFT JOIN extra USING (profile_id) LEFT JOIN segs USING (profile_id)
"""


class ProfileReads:
    """Mixin for DuckDBStore: needs ``_reading`` (a cursor behind the compaction gate)."""

    def profile_docs(self, profile_ids: list[str], con: Any = None) -> list[tuple[str, str]]:
        """(profile id, JSON document) for each of ``profile_ids`` that exists."""
        with self._reading(con) as con:
            con.register("_doc_ids", pa.table({"profile_id": pa.array(profile_ids, pa.string())}))
            try:
                return con.execute(DOCS_SQL).fetchall()
            finally:
                con.unregister("_doc_ids")

    def lookup_keys(self, profile_ids: list[str], con: Any = None) -> list[tuple[str, str]]:
        """(``kind:value`` key, profile id) for every identifier of these profiles,
        and ``profile:<old id>`` for the profiles merged into them. A profile's
        own id needs no key: the online store finds it among its documents."""
        with self._reading(con) as con:
            con.register("_key_ids", pa.table({"profile_id": pa.array(profile_ids, pa.string())}))
            try:
                return con.execute(f"""
                    SELECT kind || ':' || value, profile_id FROM identities JOIN _key_ids USING (profile_id)
                    UNION ALL SELECT '{PROFILE}:' || from_profile, to_profile FROM profile_redirects
                              JOIN _key_ids ON _key_ids.profile_id = to_profile""").fetchall()
            finally:
                con.unregister("_key_ids")

    def changed_since(self, watermark: str | None) -> tuple[list[str], datetime | None]:
        """Profiles updated after ``watermark`` (all of them for None), and the newest update time."""
        with self._reading() as con:
            rows = con.execute(
                "SELECT profile_id, updated_at FROM profiles WHERE $since IS NULL OR updated_at > $since::TIMESTAMPTZ",
                {"since": watermark}).fetchall()
        return [r[0] for r in rows], max((r[1] for r in rows), default=None)

    def resolve(self, identifier: str, region: str = "US", hasher: "IdentityHasher | None" = None) -> str | None:
        """Any identifier -> the current profile id (old, merged ids redirect)."""
        with self._reading() as con:
            for kind, value in candidate_keys(identifier, region, hasher):
                if kind == PROFILE:
                    # A scalar query always returns one row; NULL when neither table knows the id.
                    found = con.execute(
                        """SELECT coalesce((SELECT to_profile FROM profile_redirects WHERE from_profile = $id),
                                           (SELECT profile_id FROM profiles WHERE profile_id = $id))""",
                        {"id": value}).fetchall()[0][0]
                else:
                    rows = con.execute("SELECT profile_id FROM identities WHERE kind = ? AND value = ?",
                                       [kind, value]).fetchall()
                    found = rows[0][0] if rows else None
                if found:
                    return str(found)
        return None

    def profile(self, profile_id: str, recent_events: int = 20) -> dict[str, Any] | None:
        docs = self.profile_docs([profile_id])
        if not docs:
            return None
        doc = orjson.loads(docs[0][1])
        doc["recent_events"] = doc["recent_events"][:recent_events]
        return doc
