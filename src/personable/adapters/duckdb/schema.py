"""Versioned schema migrations for the embedded store.

Each migration runs once, in order, inside a transaction, and is recorded in
``schema_migrations``. Never edit a released migration: add a new one.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "event log, quarantine, identity graph, profiles", """
CREATE TABLE events (
    message_id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    event VARCHAR,
    name VARCHAR,
    user_id VARCHAR,
    anonymous_id VARCHAR,
    previous_id VARCHAR,
    group_id VARCHAR,
    profile_id VARCHAR NOT NULL,
    timestamp TIMESTAMPTZ NOT NULL,
    original_timestamp TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    context JSON,
    properties JSON,
    traits JSON,
    device VARCHAR,
    channel VARCHAR,
    revenue DOUBLE,
    currency VARCHAR,
    source VARCHAR NOT NULL
);
CREATE SEQUENCE quarantine_seq;
CREATE TABLE quarantine (
    id BIGINT DEFAULT nextval('quarantine_seq'),
    received_at TIMESTAMPTZ NOT NULL,
    source VARCHAR,
    origin VARCHAR,
    record_no BIGINT,
    message_id VARCHAR,
    problems STRUCT(path VARCHAR, problem VARCHAR)[],
    raw VARCHAR
);
CREATE TABLE identities (
    kind VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    profile_id VARCHAR NOT NULL,
    first_seen TIMESTAMPTZ,
    source VARCHAR,
    PRIMARY KEY (kind, value)
);
CREATE TABLE profile_merges (
    from_profile VARCHAR NOT NULL,
    into_profile VARCHAR NOT NULL,
    merged_at TIMESTAMPTZ NOT NULL,
    reason VARCHAR
);
CREATE TABLE profile_redirects (
    from_profile VARCHAR PRIMARY KEY,
    to_profile VARCHAR NOT NULL
);
CREATE TABLE identity_conflicts (
    kind VARCHAR, value VARCHAR, kept_users VARCHAR[], refused_users VARCHAR[],
    seen_at TIMESTAMPTZ
);
CREATE TABLE profiles (
    profile_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    first_seen TIMESTAMPTZ,
    last_seen TIMESTAMPTZ,
    event_count BIGINT DEFAULT 0,
    session_count BIGINT DEFAULT 0,
    page_count BIGINT DEFAULT 0,
    order_count BIGINT DEFAULT 0,
    revenue DOUBLE DEFAULT 0,
    last_device VARCHAR,
    last_device_at TIMESTAMPTZ,
    last_channel VARCHAR,
    last_channel_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ
);
CREATE TABLE profile_traits (
    profile_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value JSON,
    observed_at TIMESTAMPTZ NOT NULL,
    source VARCHAR,
    message_id VARCHAR,
    PRIMARY KEY (profile_id, key)
);
CREATE TABLE profile_consents (
    profile_id VARCHAR NOT NULL,
    purpose VARCHAR NOT NULL,
    granted BOOLEAN NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    source VARCHAR,
    message_id VARCHAR,
    PRIMARY KEY (profile_id, purpose)
);
CREATE TABLE consent_log (
    profile_id VARCHAR, purpose VARCHAR, granted BOOLEAN, observed_at TIMESTAMPTZ,
    source VARCHAR, message_id VARCHAR
);
CREATE TABLE import_runs (
    origin VARCHAR, source VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    received BIGINT, accepted BIGINT, duplicates BIGINT, quarantined BIGINT
);
"""),
    (2, "event-log offsets committed with the events they carried", """
CREATE TABLE log_offsets (
    stream VARCHAR PRIMARY KEY,
    committed BIGINT NOT NULL,
    updated_at TIMESTAMPTZ
);
"""),
    (3, "data quality: standardized traits keep the observed value; report history; reporting currency", """
ALTER TABLE profile_traits ADD COLUMN raw_value JSON;
ALTER TABLE profile_traits ADD COLUMN origin VARCHAR DEFAULT 'observed';
ALTER TABLE events ADD COLUMN revenue_reporting DOUBLE;
-- The standard form of an identify's configured traits (field -> value): what
-- probabilistic resolution compares, record by record.
ALTER TABLE events ADD COLUMN std_traits JSON;
-- Trait values as text, the shape quality rules and reports are written against.
CREATE VIEW trait_values AS
SELECT profile_id, key AS field, value ->> '$' AS value, json_type(value) AS value_type,
       observed_at, source, origin
FROM profile_traits;
CREATE SEQUENCE quality_report_seq;
CREATE TABLE quality_reports (
    id BIGINT DEFAULT nextval('quality_report_seq') PRIMARY KEY,
    run_at TIMESTAMPTZ NOT NULL,
    report JSON NOT NULL
);
"""),
    (4, "probabilistic identity resolution: scored pairs, review queue, audit of merges and undos", """
CREATE SEQUENCE resolution_run_seq;
CREATE TABLE resolution_runs (
    run_id BIGINT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    summary JSON,
    model JSON
);
CREATE TABLE match_pairs (
    left_profile VARCHAR NOT NULL,
    right_profile VARCHAR NOT NULL,
    run_id BIGINT NOT NULL,
    match_probability DOUBLE NOT NULL,
    match_weight DOUBLE NOT NULL,
    explanation JSON,
    status VARCHAR NOT NULL,
    reason VARCHAR,
    decided_by VARCHAR,
    decided_at TIMESTAMPTZ,
    PRIMARY KEY (left_profile, right_profile)
);
CREATE SEQUENCE identity_audit_seq;
CREATE TABLE identity_audit (
    id BIGINT DEFAULT nextval('identity_audit_seq') PRIMARY KEY,
    happened_at TIMESTAMPTZ NOT NULL,
    action VARCHAR NOT NULL,
    actor VARCHAR,
    from_profile VARCHAR,
    into_profile VARCHAR,
    match_probability DOUBLE,
    snapshot JSON
);
"""),
    (5, "segments: definitions, live membership, its history and sizes; computed traits", """
CREATE VIEW profile_events AS
SELECT coalesce(r.to_profile, e.profile_id) AS profile_id, e.message_id, e.type, e.event, e.timestamp,
       e.properties, e.revenue_reporting, e.device, e.channel
FROM events e LEFT JOIN profile_redirects r ON r.from_profile = e.profile_id;
CREATE TABLE computed_traits (
    profile_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value JSON,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (profile_id, key)
);
CREATE VIEW computed_values AS SELECT profile_id, key, value ->> '$' AS value FROM computed_traits;
-- Transitions of computed traits that are states (lifecycle stage, RFM segment, cluster).
CREATE TABLE computed_history (
    profile_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value JSON,
    since TIMESTAMPTZ NOT NULL,
    until TIMESTAMPTZ
);
CREATE TABLE segments (
    segment_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    description VARCHAR,
    rule JSON NOT NULL,
    origin VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    refreshed_at TIMESTAMPTZ
);
CREATE TABLE segment_members (
    segment_id VARCHAR NOT NULL,
    profile_id VARCHAR NOT NULL,
    entered_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (segment_id, profile_id)
);
CREATE TABLE segment_history (
    segment_id VARCHAR NOT NULL,
    profile_id VARCHAR NOT NULL,
    entered_at TIMESTAMPTZ NOT NULL,
    exited_at TIMESTAMPTZ,
    entered_by VARCHAR,
    exited_by VARCHAR
);
CREATE TABLE segment_sizes (
    segment_id VARCHAR NOT NULL,
    measured_at TIMESTAMPTZ NOT NULL,
    size BIGINT NOT NULL,
    entered BIGINT NOT NULL,
    exited BIGINT NOT NULL,
    cause VARCHAR
);
"""),
    (6, "an index of events by profile: realtime segments read a batch's profiles' events through it", """
CREATE INDEX events_profile ON events(profile_id);
CREATE INDEX segment_members_profile ON segment_members(profile_id);
"""),
    (7, "model registry: every trained model version with its window, features, parameters, metrics and data hash", """
CREATE TABLE model_versions (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    trained_at TIMESTAMPTZ NOT NULL,
    train_cutoff TIMESTAMPTZ,
    horizon_days INTEGER,
    features JSON,
    params JSON,
    metrics JSON,
    data_hash VARCHAR,
    artifact VARCHAR,
    reason VARCHAR,
    PRIMARY KEY (name, version)
);
CREATE TABLE model_monitoring (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL,
    kind VARCHAR NOT NULL,
    report JSON NOT NULL
);
"""),
    (8, "the item catalog: products with attributes and text, for content-based recommendations and rules", """
CREATE TABLE items (
    item_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    category VARCHAR,
    brand VARCHAR,
    price DOUBLE,
    description VARCHAR,
    in_stock BOOLEAN NOT NULL DEFAULT true,
    attributes JSON,
    source VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- Precomputed recommendations, when the offline store also serves online reads.
CREATE TABLE recommendations (
    profile_id VARCHAR PRIMARY KEY,
    payload JSON NOT NULL
);
"""),
    (9, "event-log positions per partition (a partitioned log, e.g. Kafka, has one per partition)", """
CREATE TABLE log_positions (
    stream VARCHAR NOT NULL, partition INTEGER NOT NULL, committed BIGINT NOT NULL, updated_at TIMESTAMPTZ,
    PRIMARY KEY (stream, partition)
);
INSERT INTO log_positions SELECT stream, 0, committed, updated_at FROM log_offsets;
DROP TABLE log_offsets;
"""),
    (10, "consent: how each consent arrived and under which policy; refusals of uses; minimized events", """
ALTER TABLE profile_consents ADD COLUMN via VARCHAR;
ALTER TABLE profile_consents ADD COLUMN policy_version VARCHAR;
ALTER TABLE consent_log ADD COLUMN via VARCHAR;
ALTER TABLE consent_log ADD COLUMN policy_version VARCHAR;
CREATE TABLE consent_refusals (
    refused_at TIMESTAMPTZ NOT NULL, profile_id VARCHAR, use VARCHAR NOT NULL, purpose VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);
-- Events of profiles refused for collection, minimized: no ids, context, traits or properties, no profile.
CREATE TABLE events_minimized (
    message_id VARCHAR NOT NULL, type VARCHAR, event VARCHAR, name VARCHAR, timestamp TIMESTAMPTZ, received_at TIMESTAMPTZ,
    source VARCHAR, device VARCHAR, channel VARCHAR, revenue_reporting DOUBLE, stored_at TIMESTAMPTZ NOT NULL
);
"""),
    (11, "the audit log: a chain of records (each with the mac of the one before) and signed checkpoints", """
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY, recorded_at TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL, target VARCHAR,
    outcome VARCHAR NOT NULL, details VARCHAR, prev_mac VARCHAR NOT NULL, mac VARCHAR NOT NULL
);
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY, mac VARCHAR NOT NULL, signed_at TIMESTAMPTZ NOT NULL, signature VARCHAR NOT NULL);
"""),
    (12, "differential privacy: the ledger of the epsilon each anonymized release spent", """
CREATE TABLE dp_budget_ledger (
    spent_at TIMESTAMPTZ NOT NULL, release_kind VARCHAR NOT NULL, epsilon DOUBLE NOT NULL, detail VARCHAR
);
"""),
    (13, "erasure: requests (resumable; the subject kept only until done) and audit records redacted by it", """
CREATE TABLE erasures (
    erasure_id VARCHAR PRIMARY KEY, requested_at TIMESTAMPTZ NOT NULL, requested_by VARCHAR, subject_digest VARCHAR NOT NULL,
    state VARCHAR NOT NULL, subject VARCHAR, certificate VARCHAR, finished_at TIMESTAMPTZ
);
CREATE INDEX erasures_subject ON erasures (subject_digest);
-- A redacted record keeps the keyed digests of the target and details it lost: the chain still verifies.
ALTER TABLE audit_log ADD COLUMN redacted VARCHAR;
"""),
    (14, "identity keys: which key the identity graph's digests are under (ids only, never a secret)", """
CREATE TABLE identity_keys (key_id VARCHAR PRIMARY KEY, activated_at TIMESTAMPTZ NOT NULL, rekeyed BIGINT NOT NULL,
    online_done BOOLEAN NOT NULL DEFAULT FALSE);
"""),
]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [version, name, datetime.now(timezone.utc)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0] or 0)
