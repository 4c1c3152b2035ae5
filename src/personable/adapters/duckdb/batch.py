"""The write path on DuckDB: one batch of raw lines, one transaction.

Parse and validate in bulk (``parse_sql``), quarantine what fails, drop what is
already stored (idempotency on messageId), then let the domain's stitcher plan
identities and apply that plan: identity graph, merges, the events themselves,
profile aggregates, traits and consents. The batch commits as a whole, so an
event is acknowledged only when all of it is durable.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import duckdb
import pyarrow as pa

from ...identity.stitcher import ANON, USER, ExistingProfile, LinkRow, Node, StitchPlan
from ...ports import IngestReport, PipelineSettings, StagedInput
from ..sql.compiler import SqlCompiler
from .batch_quality import QualityStaging
from .parse_sql import parse_sql, q

REJECT_PROBLEM = "is not valid UTF-8 or not a readable line"


class ParseStatements:
    """The parse statement per (identifier traits, validate), generated once per store."""

    def __init__(self) -> None:
        self._cache: dict[tuple[object, ...], str] = {}

    def __call__(self, settings: PipelineSettings, validate: bool) -> str:
        key = (settings.identifier_traits, validate)
        if key not in self._cache:
            self._cache[key] = parse_sql(list(settings.identifier_traits), validate)
        return self._cache[key]


class DuckDBBatch(QualityStaging):
    def __init__(self, con: duckdb.DuckDBPyConnection, staged: StagedInput, settings: PipelineSettings,
                 compile: SqlCompiler, parse_statement: ParseStatements):
        self.con = con
        self.compile = compile
        self._parse_statement = parse_statement
        self.staged = staged
        self.settings = settings
        self.now = staged.received_at or datetime.now(timezone.utc)
        self._report = IngestReport(origin=staged.origin)
        self._plan: StitchPlan | None = None

    # -- staging, validation, quarantine, dedupe ---------------------------
    def stage(self, mode: str, first: int = 0, last: int = 0) -> None:
        con, s = self.con, self.staged
        # received_at and source come from the batch, unless the lines carry their
        # own (lines replayed from the event log do).
        own = set(s.lines.column_names) if mode == "lines" and s.lines is not None else set()
        select, params = [], []
        for column, sql_type, value in (("received_at", "TIMESTAMPTZ", self.now), ("source", "VARCHAR", s.source),
                                        ("origin", "VARCHAR", s.origin), ("require_ts", "BOOLEAN", s.require_timestamp)):
            if column in own:
                select.append(f"{column}::{sql_type} AS {column}")
            else:
                select.append(f"?::{sql_type} AS {column}")
                params.append(value)
        cols = ", ".join(select)
        if mode == "lines":
            con.register("_lines", s.lines)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _stg AS SELECT row_number() OVER () AS seq, line, {cols} FROM _lines", params)
            con.unregister("_lines")
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _stg AS SELECT seq, line, {cols} FROM _file_lines "
                        f"WHERE seq BETWEEN {int(first)} AND {int(last)}", params)
        validate = not s.validated
        parse_params: dict = {"junk": list(self.settings.junk_values)}
        if validate:
            parse_params["max_future_hours"] = self.settings.max_future_hours
        con.execute(self._parse_statement(self.settings, validate), parse_params)

    def screen(self) -> None:
        """Quarantine what failed, drop what is already stored (after the quality
        checks have added their problems to ``_parsed``)."""
        con = self.con
        con.execute("""
            INSERT INTO quarantine (received_at, source, origin, record_no, message_id, problems, raw)
            SELECT received_at, source, origin, seq, message_id, problems, left(line, 65536)
            FROM _parsed WHERE len(problems) > 0""")
        # Idempotency: keep the first copy of each messageId in the batch, and only
        # those not already stored. The dedupe works on narrow columns and joins
        # back by seq: a window over the wide rows (JSON, raw lines) costs far more.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _new AS
            SELECT p.* EXCLUDE (problems, line) FROM _parsed p
            SEMI JOIN (SELECT min(seq) AS seq FROM _parsed WHERE len(problems) = 0 GROUP BY message_id) k USING (seq)
            WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = p.message_id)""")
        received, quarantined = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE len(problems) > 0) FROM _parsed").fetchall()[0]
        new = con.execute("SELECT count(*) FROM _new").fetchall()[0][0]
        valid = received - quarantined
        r = self._report
        # += : lines the file reader rejected may already be counted (quarantine_rejects).
        r.received += received
        r.quarantined += quarantined
        r.accepted, r.duplicates = new, valid - new
        if quarantined:
            rows = con.execute("""SELECT seq, message_id, problems FROM _parsed
                                  WHERE len(problems) > 0 ORDER BY seq LIMIT 20""").fetchall()
            r.problems.extend({"record": seq, "messageId": mid, "problems": probs} for seq, mid, probs in rows)

    def quarantine_rejects(self, rejects: list[tuple[int, str]]) -> None:
        """Lines the file reader could not even decode (e.g. invalid UTF-8)."""
        if not rejects:
            return
        self.con.executemany(
            "INSERT INTO quarantine (received_at, source, origin, record_no, problems, raw) VALUES (?, ?, ?, ?, ?, ?)",
            [[self.now, self.staged.source, self.staged.origin, line_no,
              [{"path": "$", "problem": REJECT_PROBLEM}], text] for line_no, text in rejects],
        )
        self._report.received += len(rejects)
        self._report.quarantined += len(rejects)
        self._report.problems.extend(
            {"record": n, "messageId": None, "problems": [{"path": "$", "problem": REJECT_PROBLEM}]} for n, _ in rejects[:20]
        )

    # -- identifiers --------------------------------------------------------
    def identifier_values(self) -> list[tuple[str, str]]:
        parts = [
            f"SELECT DISTINCT {kind!r} AS kind, ident_{i} AS raw FROM _new WHERE ident_{i} IS NOT NULL"
            for i, (_trait, kind) in enumerate(self.settings.identifier_traits)
        ]
        if not parts:
            return []
        return [tuple(r) for r in self.con.execute(" UNION ".join(parts)).fetchall()]

    def set_identifier_values(self, rows: list[tuple[str, str, str | None]]) -> None:
        table = pa.table({
            "kind": pa.array([r[0] for r in rows], pa.string()),
            "raw": pa.array([r[1] for r in rows], pa.string()),
            "node": pa.array([r[2] for r in rows], pa.string()),
        })
        self.con.register("_idv", table)
        self.con.execute("CREATE OR REPLACE TEMP TABLE _idmap AS SELECT * FROM _idv WHERE node IS NOT NULL")
        self.con.unregister("_idv")

    def _ident_columns(self) -> list[tuple[int, str]]:
        return [(i, kind) for i, (_t, kind) in enumerate(self.settings.identifier_traits)]

    def link_rows(self) -> list[LinkRow]:
        idents = self._ident_columns()
        joins = "".join(
            f" LEFT JOIN _idmap m{i} ON m{i}.kind = {kind!r} AND m{i}.raw = n.ident_{i}" for i, kind in idents
        )
        node_cols = "".join(f", m{i}.node AS id{i}" for i, _ in idents)
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _links AS
            SELECT n.seq, n.timestamp, n.type, n.user_id, n.anonymous_id, n.previous_id, n.source{node_cols}
            FROM _new n{joins}""")
        id_cols = "".join(f", id{i}" for i, _ in idents)
        rows = self.con.execute(f"""
            SELECT user_id, anonymous_id, CASE WHEN type = 'alias' THEN previous_id END AS prev{id_cols},
                   min(timestamp) AS first_ts
            FROM _links GROUP BY ALL ORDER BY first_ts""").fetchall()
        known_users = self._known_user_ids({r[2] for r in rows if r[2] is not None})
        batch_users = {r[0] for r in rows if r[0] is not None}
        out: list[LinkRow] = []
        for row in rows:
            user, anon, prev = row[0], row[1], row[2]
            nodes: list[Node] = []
            if user is not None:
                nodes.append((USER, user))
            if anon is not None:
                nodes.append((ANON, anon))
            for (_i, kind), value in zip(idents, row[3:-1]):
                if value is not None:
                    nodes.append((kind, value))
            if nodes:
                out.append(LinkRow(nodes))
            if prev is not None and nodes:
                kind = USER if (prev in batch_users or prev in known_users) else ANON
                out.append(LinkRow([nodes[0], (kind, prev)], alias=True))
        return out

    def _known_user_ids(self, values: set[str]) -> set[str]:
        if not values:
            return set()
        self.con.register("_vals", pa.table({"value": pa.array(sorted(values), pa.string())}))
        found = self.con.execute(
            "SELECT i.value FROM identities i JOIN _vals v USING (value) WHERE i.kind = 'user_id'").fetchall()
        self.con.unregister("_vals")
        return {r[0] for r in found}

    def shared_nodes(self) -> set[Node]:
        """Identifier-trait nodes of this batch that earlier batches found shared
        (two users refused a link through them)."""
        return {(k, v) for k, v in self.con.execute("""
            SELECT DISTINCT c.kind, c.value FROM identity_conflicts c JOIN _batch_nodes b USING (kind, value)
            WHERE c.kind NOT IN ('user_id', 'anonymous_id')""").fetchall()}

    def existing(self, nodes: Iterable[Node]) -> tuple[dict[Node, str], dict[str, ExistingProfile]]:
        nodes = list(nodes)
        self.con.register("_nodes", pa.table({
            "kind": pa.array([n[0] for n in nodes], pa.string()),
            "value": pa.array([n[1] for n in nodes], pa.string()),
        }))
        self.con.execute("CREATE OR REPLACE TEMP TABLE _batch_nodes AS SELECT DISTINCT kind, value FROM _nodes")
        self.con.unregister("_nodes")
        found = self.con.execute(
            "SELECT i.kind, i.value, i.profile_id FROM identities i JOIN _batch_nodes b USING (kind, value)").fetchall()
        existing_nodes = {(k, v): p for k, v, p in found}
        profiles: dict[str, ExistingProfile] = {}
        if existing_nodes:
            pids = sorted(set(existing_nodes.values()))
            self.con.register("_pids", pa.table({"profile_id": pa.array(pids, pa.string())}))
            for pid, created, users in self.con.execute("""
                    SELECT p.profile_id, p.created_at,
                           list(i.value) FILTER (WHERE i.kind = 'user_id')
                    FROM profiles p JOIN _pids USING (profile_id)
                    LEFT JOIN identities i ON i.profile_id = p.profile_id
                    GROUP BY ALL""").fetchall():
                profiles[pid] = ExistingProfile(pid, created, frozenset(users or ()))
            self.con.unregister("_pids")
        return existing_nodes, profiles

    # -- applying the plan ---------------------------------------------------
    def apply(self, plan: StitchPlan) -> None:
        self._plan = plan
        con = self.con
        assign = pa.table({
            "kind": pa.array([n[0] for n in plan.assignment], pa.string()),
            "value": pa.array([n[1] for n in plan.assignment], pa.string()),
            "profile_id": pa.array(list(plan.assignment.values()), pa.string()),
        })
        con.register("_assign_arrow", assign)
        con.execute("CREATE OR REPLACE TEMP TABLE _assign AS SELECT * FROM _assign_arrow")
        con.unregister("_assign_arrow")
        new_nodes = pa.table({
            "kind": pa.array([n[0] for n in plan.new_nodes], pa.string()),
            "value": pa.array([n[1] for n in plan.new_nodes], pa.string()),
        })
        con.register("_new_nodes", new_nodes)
        con.execute("""
            INSERT INTO identities (kind, value, profile_id, first_seen, source)
            WITH seen AS (
                SELECT 'user_id' AS kind, user_id AS value, timestamp, source FROM _links WHERE user_id IS NOT NULL
                UNION ALL SELECT 'anonymous_id', anonymous_id, timestamp, source FROM _links WHERE anonymous_id IS NOT NULL
                UNION ALL SELECT 'user_id', previous_id, timestamp, source FROM _links WHERE previous_id IS NOT NULL
                UNION ALL SELECT 'anonymous_id', previous_id, timestamp, source FROM _links WHERE previous_id IS NOT NULL
                """ + "".join(
                    f" UNION ALL SELECT {kind!r}, id{i}, timestamp, source FROM _links WHERE id{i} IS NOT NULL"
                    for i, kind in self._ident_columns()) + """
            ), firsts AS (
                SELECT kind, value, min(timestamp) AS first_seen, arg_min(source, timestamp) AS source
                FROM seen GROUP BY ALL
            )
            SELECT n.kind, n.value, a.profile_id, f.first_seen, f.source
            FROM _new_nodes n JOIN _assign a USING (kind, value)
            LEFT JOIN firsts f USING (kind, value)""")
        con.unregister("_new_nodes")
        if plan.conflicts:
            con.executemany(
                "INSERT INTO identity_conflicts VALUES (?, ?, ?, ?, ?)",
                [[c.node[0], c.node[1], list(c.kept_profile_users), list(c.refused_users), self.now] for c in plan.conflicts],
            )
        self._report.refused_links = len(plan.conflicts)
        if plan.merges:
            self._apply_merges(plan.merges)
        self._append_events()
        self._update_profiles()
        self._update_traits()
        self._update_consents()

    def _apply_merges(self, merges: list[tuple[str, str]], reason: str = "identify") -> None:
        con = self.con
        con.register("_m", pa.table({
            "from_profile": pa.array([m[0] for m in merges], pa.string()),
            "into_profile": pa.array([m[1] for m in merges], pa.string()),
        }))
        con.execute("CREATE OR REPLACE TEMP TABLE _merges AS SELECT * FROM _m")
        con.unregister("_m")
        con.execute("INSERT INTO profile_merges SELECT from_profile, into_profile, ?, ? FROM _merges", [self.now, reason])
        con.execute("""UPDATE identities SET profile_id = m.into_profile FROM _merges m
                       WHERE identities.profile_id = m.from_profile""")
        # Old ids keep resolving: point every redirect at the final survivor.
        con.execute("""UPDATE profile_redirects SET to_profile = m.into_profile FROM _merges m
                       WHERE profile_redirects.to_profile = m.from_profile""")
        con.execute("INSERT INTO profile_redirects SELECT from_profile, into_profile FROM _merges ON CONFLICT DO NOTHING")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _folded AS
            SELECT g.into_profile AS profile_id, min(created_at) AS created_at, min(first_seen) AS first_seen,
                   max(last_seen) AS last_seen, sum(event_count) AS event_count, sum(session_count) AS session_count,
                   sum(page_count) AS page_count, sum(order_count) AS order_count, sum(revenue) AS revenue,
                   arg_max(last_device, last_device_at) AS last_device, max(last_device_at) AS last_device_at,
                   arg_max(last_channel, last_channel_at) AS last_channel, max(last_channel_at) AS last_channel_at,
                   max(updated_at) AS updated_at
            FROM profiles p JOIN (SELECT from_profile AS pid, into_profile FROM _merges
                                  UNION SELECT DISTINCT into_profile, into_profile FROM _merges) g
                 ON p.profile_id = g.pid
            GROUP BY g.into_profile""")
        con.execute("DELETE FROM profiles WHERE profile_id IN (SELECT from_profile FROM _merges)")
        con.execute("""INSERT INTO profiles SELECT * FROM _folded ON CONFLICT (profile_id) DO UPDATE SET
            created_at = excluded.created_at, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
            event_count = excluded.event_count, session_count = excluded.session_count,
            page_count = excluded.page_count, order_count = excluded.order_count, revenue = excluded.revenue,
            last_device = excluded.last_device, last_device_at = excluded.last_device_at,
            last_channel = excluded.last_channel, last_channel_at = excluded.last_channel_at,
            updated_at = excluded.updated_at""")
        for table, key in (("profile_traits", "key"), ("profile_consents", "purpose")):
            # Move the merged profiles' rows onto the survivor, keeping the newest per key.
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _moved AS
                SELECT m.into_profile AS profile_id, t.* EXCLUDE (profile_id)
                FROM {table} t JOIN _merges m ON t.profile_id = m.from_profile
                QUALIFY row_number() OVER (PARTITION BY m.into_profile, t.{key} ORDER BY t.observed_at DESC) = 1""")
            con.execute(f"DELETE FROM {table} WHERE profile_id IN (SELECT from_profile FROM _merges)")
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in ("profile_id", key))
            con.execute(f"""INSERT INTO {table} SELECT {', '.join(cols)} FROM _moved
                            ON CONFLICT (profile_id, {key}) DO UPDATE SET {updates}
                            WHERE excluded.observed_at > {table}.observed_at""")
        con.execute("UPDATE consent_log SET profile_id = m.into_profile FROM _merges m WHERE consent_log.profile_id = m.from_profile")
        self._report.merges = len(merges)

    def _register_rates(self) -> None:
        rates = self.settings.currency_rates
        self.con.register("_rates", pa.table({
            "currency": pa.array([c for c, _ in rates], pa.string()),
            "rate": pa.array([r for _, r in rates], pa.float64()),
        }))

    def _append_events(self) -> None:
        # Revenue in the reporting currency: an amount without a currency is taken
        # to be in it; one in a currency without a configured rate stays NULL (the
        # quality report counts those) rather than being summed as if it were.
        self._register_rates()
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _stored AS
            SELECT n.*, coalesce(u.profile_id, a.profile_id) AS profile_id,
                   CASE WHEN n.currency IS NULL OR n.currency = {q(self.settings.reporting_currency)} THEN n.revenue
                        ELSE n.revenue * r.rate END AS revenue_reporting,
                   tv.std_traits
            FROM _new n
            LEFT JOIN _assign u ON u.kind = 'user_id' AND u.value = n.user_id
            LEFT JOIN _assign a ON a.kind = 'anonymous_id' AND a.value = n.anonymous_id
            LEFT JOIN _rates r ON r.currency = n.currency
            LEFT JOIN (SELECT seq, json_group_object(field, value) AS std_traits FROM _tv
                       WHERE status IN ('standardized', 'observed') GROUP BY seq) tv ON tv.seq = n.seq""")
        self.con.unregister("_rates")
        self.con.execute("""
            INSERT INTO events BY NAME
            SELECT message_id, type, event, name, user_id, anonymous_id, previous_id, group_id, profile_id,
                   timestamp, original_timestamp, sent_at, received_at, context, properties, traits,
                   device, channel, revenue, currency, revenue_reporting, std_traits, source
            FROM _stored""")

    def _update_profiles(self) -> None:
        timeout = int(self.settings.session_timeout_minutes)
        created, touched = self.con.execute("""
            SELECT count(*) FILTER (WHERE p.profile_id IS NULL), count(*)
            FROM (SELECT DISTINCT profile_id FROM _stored) s LEFT JOIN profiles p USING (profile_id)""").fetchall()[0]
        self._report.profiles_created, self._report.profiles_touched = created, touched
        self.con.execute(f"""
            INSERT INTO profiles
            WITH ordered AS (
                SELECT s.profile_id, s.timestamp, s.type, s.event, s.revenue_reporting AS revenue, s.device, s.channel,
                       lag(s.timestamp) OVER (PARTITION BY s.profile_id ORDER BY s.timestamp, s.seq) AS prev_ts,
                       p.last_seen AS stored_last_seen
                FROM _stored s LEFT JOIN profiles p USING (profile_id)
            )
            SELECT profile_id, ?::TIMESTAMPTZ AS created_at, min(timestamp), max(timestamp), count(*),
                   count(*) FILTER (WHERE (prev_ts IS NULL AND (stored_last_seen IS NULL
                                           OR timestamp - stored_last_seen > INTERVAL {timeout} MINUTE))
                                       OR timestamp - prev_ts > INTERVAL {timeout} MINUTE),
                   count(*) FILTER (WHERE type IN ('page', 'screen')),
                   count(*) FILTER (WHERE type = 'track' AND event = ?),
                   coalesce(sum(revenue) FILTER (WHERE type = 'track' AND event = ?), 0),
                   arg_max(device, timestamp) FILTER (WHERE device IS NOT NULL),
                   max(timestamp) FILTER (WHERE device IS NOT NULL),
                   arg_max(channel, timestamp) FILTER (WHERE channel IS NOT NULL),
                   max(timestamp) FILTER (WHERE channel IS NOT NULL),
                   ?::TIMESTAMPTZ
            FROM ordered GROUP BY profile_id
            ON CONFLICT (profile_id) DO UPDATE SET
                first_seen = least(profiles.first_seen, excluded.first_seen),
                last_seen = greatest(profiles.last_seen, excluded.last_seen),
                event_count = profiles.event_count + excluded.event_count,
                session_count = profiles.session_count + excluded.session_count,
                page_count = profiles.page_count + excluded.page_count,
                order_count = profiles.order_count + excluded.order_count,
                revenue = profiles.revenue + excluded.revenue,
                last_device = CASE WHEN profiles.last_device_at IS NULL OR excluded.last_device_at >= profiles.last_device_at
                                   THEN coalesce(excluded.last_device, profiles.last_device) ELSE profiles.last_device END,
                last_device_at = greatest(profiles.last_device_at, excluded.last_device_at),
                last_channel = CASE WHEN profiles.last_channel_at IS NULL OR excluded.last_channel_at >= profiles.last_channel_at
                                    THEN coalesce(excluded.last_channel, profiles.last_channel) ELSE profiles.last_channel END,
                last_channel_at = greatest(profiles.last_channel_at, excluded.last_channel_at),
                updated_at = excluded.updated_at""", [self.now, self.settings.order_event, self.settings.order_event, self.now])

    def _update_traits(self) -> None:
        policies = pa.table({
            "key": pa.array([k for k, _ in self.settings.trait_policies], pa.string()),
            "policy": pa.array([p for _, p in self.settings.trait_policies], pa.string()),
        })
        self.con.register("_policies", policies)
        default = self.settings.trait_default_policy
        # One row per (profile, trait): the newest observation, or the oldest for
        # first_write_wins traits. The upsert then compares with what is stored.
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _traits AS
            WITH kv AS (
                SELECT profile_id, seq, timestamp, source, message_id,
                       unnest(map_entries(json_transform(traits, '"MAP(VARCHAR, JSON)"'))) AS e
                FROM _stored WHERE type = 'identify' AND json_type(traits) = 'OBJECT'
            ), typed AS (
                -- Configured fields carry their standard form (_tv, see batch_quality);
                -- placeholders for "no value" are not observations and are not stored.
                SELECT kv.*, e.key AS key,
                       CASE WHEN tv.status = 'standardized' THEN to_json(tv.value) ELSE e.value END AS value,
                       CASE WHEN tv.status = 'standardized' THEN e.value END AS raw_value,
                       coalesce(tv.status, 'observed') AS origin,
                       coalesce(p.policy, '{default}') AS policy
                FROM kv LEFT JOIN _policies p ON p.key = e.key
                LEFT JOIN _tv tv ON tv.seq = kv.seq AND tv.field = e.key
                WHERE e.key <> 'consent' AND coalesce(tv.status, '') <> 'missing'
            )
            SELECT profile_id, key, value, timestamp AS observed_at, source, message_id, raw_value, origin, policy
            FROM typed
            QUALIFY row_number() OVER (
                PARTITION BY profile_id, key
                ORDER BY CASE WHEN policy = 'first_write_wins' THEN -epoch_us(timestamp) ELSE epoch_us(timestamp) END DESC,
                         seq DESC) = 1""")
        self.con.unregister("_policies")
        for policy, newer in (("first_write_wins", "<"), ("last_write_wins", ">=")):
            # An imputed value only stands in until a real observation arrives.
            self.con.execute(f"""
                INSERT INTO profile_traits BY NAME
                SELECT profile_id, key, value, observed_at, source, message_id, raw_value, origin
                FROM _traits WHERE policy = '{policy}'
                ON CONFLICT (profile_id, key) DO UPDATE SET
                    value = excluded.value, observed_at = excluded.observed_at,
                    source = excluded.source, message_id = excluded.message_id,
                    raw_value = excluded.raw_value, origin = excluded.origin
                WHERE excluded.observed_at {newer} profile_traits.observed_at OR profile_traits.origin = 'imputed'""")

    def _update_consents(self, log: bool = True) -> None:
        self.con.execute("""
            CREATE OR REPLACE TEMP TABLE _consent AS
            WITH raw AS (
                SELECT profile_id, seq, timestamp, source, message_id,
                       unnest(map_entries(json_transform(consent_context, '"MAP(VARCHAR, JSON)"'))) AS e
                FROM _stored WHERE consent_context IS NOT NULL
                UNION ALL
                SELECT profile_id, seq, timestamp, source, message_id,
                       unnest(map_entries(json_transform(consent_traits, '"MAP(VARCHAR, JSON)"')))
                FROM _stored WHERE consent_traits IS NOT NULL
            )
            SELECT profile_id, e.key AS purpose, (e.value ->> '$')::BOOLEAN AS granted, timestamp AS observed_at,
                   source, message_id, seq
            FROM raw""")
        if log:
            self.con.execute("""INSERT INTO consent_log SELECT profile_id, purpose, granted, observed_at, source, message_id
                                FROM _consent ORDER BY seq""")
        self.con.execute("""
            INSERT INTO profile_consents
            SELECT profile_id, purpose, granted, observed_at, source, message_id FROM _consent
            QUALIFY row_number() OVER (PARTITION BY profile_id, purpose ORDER BY observed_at DESC, seq DESC) = 1
            ON CONFLICT (profile_id, purpose) DO UPDATE SET
                granted = excluded.granted, observed_at = excluded.observed_at,
                source = excluded.source, message_id = excluded.message_id
            WHERE excluded.observed_at >= profile_consents.observed_at""")

    def changed_profiles(self) -> tuple[list[str], list[str]]:
        """Profiles this batch touched (survivors included) and profiles merged away."""
        touched = [r[0] for r in self.con.execute("SELECT DISTINCT profile_id FROM _stored").fetchall()]
        removed = [m[0] for m in (self._plan.merges if self._plan else [])]
        touched = sorted(set(touched) | {m[1] for m in (self._plan.merges if self._plan else [])})
        return touched, removed

    def commit_log_offset(self, stream: str, offset: int) -> None:
        self.con.execute("""INSERT INTO log_offsets VALUES (?, ?, ?)
                            ON CONFLICT (stream) DO UPDATE SET committed = excluded.committed,
                                                              updated_at = excluded.updated_at""",
                         [stream, offset, self.now])

    def report(self) -> IngestReport:
        return self._report
