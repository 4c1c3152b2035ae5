"""The store's relations as Ibis tables, declared once.

Analytics (quality reports, segment rules, RFM, lifecycle, features, models)
are Ibis expressions over these unbound tables; a store runs them
(``OfflineStore.run``): DuckDB now, Spark later. The names and columns are the
DuckDB adapter's tables and views (``adapters/duckdb/schema.py``).
"""

from __future__ import annotations

import ibis

TS = "timestamp('UTC')"

PROFILES = ibis.table({
    "profile_id": "string", "created_at": TS, "first_seen": TS, "last_seen": TS, "event_count": "int64",
    "session_count": "int64", "page_count": "int64", "order_count": "int64", "revenue": "float64",
    "last_device": "string", "last_channel": "string",
}, name="profiles")
# Events attributed to the current profile (through merges).
PROFILE_EVENTS = ibis.table({
    "profile_id": "string", "message_id": "string", "type": "string", "event": "string", "timestamp": TS,
    "properties": "json", "revenue_reporting": "float64", "device": "string", "channel": "string",
}, name="profile_events")
EVENTS = ibis.table({"revenue": "float64", "currency": "string", "revenue_reporting": "float64"}, name="events")
TRAIT_VALUES = ibis.table({
    "profile_id": "string", "field": "string", "value": "string", "value_type": "string",
    "observed_at": TS, "source": "string", "origin": "string",
}, name="trait_values")
PROFILE_CONSENTS = ibis.table({
    "profile_id": "string", "purpose": "string", "granted": "boolean", "observed_at": TS, "source": "string",
    "message_id": "string", "via": "string", "policy_version": "string",
}, name="profile_consents")
COMPUTED_VALUES = ibis.table({"profile_id": "string", "key": "string", "value": "string"}, name="computed_values")
SEGMENT_MEMBERS = ibis.table({"segment_id": "string", "profile_id": "string"}, name="segment_members")
IDENTITIES = ibis.table({"kind": "string", "value": "string", "profile_id": "string"}, name="identities")
ITEMS = ibis.table({"item_id": "string", "name": "string", "category": "string", "brand": "string",
                    "price": "float64", "description": "string", "in_stock": "boolean", "attributes": "json",
                    "source": "string", "updated_at": "timestamp('UTC')"}, name="items")
