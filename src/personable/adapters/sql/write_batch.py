"""The write path on a SQL store: one batch, one transaction, any SQL backend.

This class keeps the orchestration -- screen, identifiers, the stitch plan's
application, events, profiles, traits, consents, merges -- written once. The
rules come from the domain as Ibis expressions (``profiles.aggregates``,
``profiles.traits``, ``events.attribution``) compiled for the backend's
dialect, and the upserts are rendered from the domain's combine rules
(``upsert.py``). A backend supplies the hooks at the top: how to run a
statement, how to put an Arrow table into a temporary table, how to parse its
staged lines into ``_parsed``, and the few JSON idioms that differ.

Temporary tables of a batch (all on the batch's connection, in its transaction):
``_parsed`` (every record, typed, with its problems), ``_new`` (valid and not
yet stored), ``_idmap``, ``_links``, ``_link_rows``, ``_batch_nodes``, ``_known_nodes``, ``_assign``, ``_stored``
(the new events as stored), ``_trait_kv`` / ``_consent_kv`` (observations).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import pyarrow as pa

from ...events.attribution import NEW_EVENT_COLUMNS, stored_events
from ...identity.components import Existing, Links
from ...identity.stitcher import ANON, USER, Node, StitchPlan
from ...ports import IngestReport, PipelineSettings, StagedInput
from ...profiles import aggregates, traits
from .quality_staging import QualityStaging
from .session import SqlSession
from .upsert import combine_upsert, upsert

REJECT_PROBLEM = "is not valid UTF-8 or not a readable line"
EVENT_COLUMNS = ("message_id", "type", "event", "name", "user_id", "anonymous_id", "previous_id", "group_id",
                 "profile_id", "timestamp", "original_timestamp", "sent_at", "received_at", "context", "properties",
                 "traits", "device", "channel", "revenue", "currency", "revenue_reporting", "std_traits", "source")
NEW_COLUMNS = tuple(NEW_EVENT_COLUMNS)
# What a minimized event keeps: enough to count, nothing that identifies or links.
MINIMIZED_COLUMNS = ("message_id", "type", "event", "name", "timestamp", "received_at", "source", "device",
                     "channel", "revenue_reporting")


@dataclass(frozen=True)
class WriteRules:
    """The domain's expressions for one configuration, built once."""

    stored: Any
    profiles: Any
    folded: Any
    traits: dict[str, Any]
    consent_log: Any
    consents: Any
    moved_traits: dict[str, Any]
    moved_consents: Any
    collection_refused: Any        # (profile_id, reason) refused for collection; None: nothing is
    collection_mode: str = "keep"
    collection_purpose: str = ""


@lru_cache(maxsize=16)
def write_rules(settings: PipelineSettings) -> WriteRules:
    consent = (settings.consent_categories, settings.gpc_denies, settings.policy_version)
    return WriteRules(
        stored=stored_events(settings.reporting_currency),
        profiles=aggregates.batch_aggregates(settings.order_event, settings.session_timeout_minutes),
        folded=aggregates.folded_profiles(),
        traits=traits.trait_winners(dict(settings.trait_policies), settings.trait_default_policy),
        consent_log=traits.consent_log(*consent),
        consents=traits.consent_winners(*consent),
        moved_traits=traits.moved_traits(dict(settings.trait_policies), settings.trait_default_policy),
        moved_consents=traits.moved_consents(),
        **_collection(settings.privacy_json),
    )


def _collection(privacy_json: str) -> dict[str, Any]:
    """The consent policy's verdict on collection for the batch's profiles."""
    import ibis

    from ...privacy.config import PrivacySection
    from ...privacy.consent import ConsentPolicy

    section = PrivacySection.model_validate_json(privacy_json) if privacy_json else PrivacySection()
    policy = ConsentPolicy(section)
    purpose = policy.purpose_for("collection")
    if section.collection_refused == "keep":
        return {"collection_refused": None}
    verdicts = policy.verdicts(purpose, ibis.table({"profile_id": "string"}, name="_stored"))
    return {"collection_refused": verdicts.filter(~verdicts.allowed).select("profile_id", "reason"),
            "collection_mode": section.collection_refused, "collection_purpose": purpose}


class SqlBatch(QualityStaging):
    """The statements run on ``db`` (a backend's ``SqlSession``, in the batch's transaction)."""

    # -- hooks a backend provides --------------------------------------------------
    NO_PROBLEMS = "len(problems) = 0"     # SQL: the record in _parsed has no problem

    def _problems_value(self, problems: list[dict[str, str]]) -> Any:
        """A list of {path, problem} as a parameter for the quarantine's problems column."""
        raise NotImplementedError

    def _quarantine_parsed(self) -> None:
        """Copy the records of _parsed that have problems into the quarantine."""
        self._exec(f"""
            INSERT INTO quarantine (received_at, source, origin, record_no, message_id, problems, raw)
            SELECT received_at, source, origin, seq, message_id, problems, left(line, 65536)
            FROM _parsed WHERE NOT ({self.NO_PROBLEMS})""")

    def _trait_kv_select(self) -> str:
        """SELECT for _trait_kv: one row per key of each stored identify's traits
        (value as JSON; a configured field's standard form from _tv)."""
        raise NotImplementedError

    def _consent_kv_select(self) -> str:
        """SELECT for _consent_kv: one row per purpose of each stored event's consent maps."""
        raise NotImplementedError

    def _std_traits_select(self) -> str:
        """SELECT (seq, std_traits) for _std_traits: an identify's configured
        fields in their standard form, as one JSON object per record."""
        raise NotImplementedError

    # -- state ---------------------------------------------------------------
    def __init__(self, db: SqlSession, staged: StagedInput, settings: PipelineSettings, compile: Callable[[Any], str]):
        self.db = db
        self.compile = compile
        self.staged = staged
        self.settings = settings
        self.rules = write_rules(settings)
        self.now = staged.received_at or datetime.now(timezone.utc)
        self._report = IngestReport(origin=staged.origin)
        self._plan: StitchPlan | None = None
        self._touched: set[str] = set()   # profiles whose events, traits or consents this batch stored

    # -- screening -----------------------------------------------------------
    def screen(self) -> None:
        """Quarantine what failed, drop what is already stored (after the quality
        checks have added their problems to ``_parsed``)."""
        self._quarantine_parsed()
        # Idempotency: keep the first copy of each messageId in the batch, and only
        # those not already stored. The dedupe works on narrow columns and joins
        # back by seq: a window over the wide rows (JSON, raw lines) costs far more.
        cols = ", ".join(f"p.{c}" for c in self._new_columns())
        self._temp("_new", f"""
            SELECT {cols} FROM _parsed p
            WHERE p.seq IN (SELECT min(seq) FROM _parsed WHERE {self.NO_PROBLEMS} GROUP BY message_id)
              AND NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = p.message_id)
              AND NOT EXISTS (SELECT 1 FROM events_minimized e WHERE e.message_id = p.message_id)""")
        received, valid = self._rows(
            f"SELECT count(*), count(*) FILTER (WHERE {self.NO_PROBLEMS}) FROM _parsed")[0]
        new = self._rows("SELECT count(*) FROM _new")[0][0]
        quarantined = received - valid
        r = self._report
        # += : lines the file reader rejected may already be counted (quarantine_rejects).
        r.received += received
        r.quarantined += quarantined
        r.accepted, r.duplicates = new, valid - new
        if quarantined:
            r.problems.extend(self._problem_sample())

    def _new_columns(self) -> list[str]:
        idents = [f"ident_{i}" for i in range(len(self.settings.identifier_traits))]
        return [*NEW_COLUMNS, *idents]

    def _problem_sample(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def quarantine_rejects(self, rejects: list[tuple[int, str]]) -> None:
        """Lines the file reader could not even decode (e.g. invalid UTF-8)."""
        if not rejects:
            return
        problems = [{"path": "$", "problem": REJECT_PROBLEM}]
        self.db.executemany(
            "INSERT INTO quarantine (received_at, source, origin, record_no, problems, raw) VALUES (?, ?, ?, ?, ?, ?)",
            [[self.now, self.staged.source, self.staged.origin, line_no, self._problems_value(problems), text]
             for line_no, text in rejects],
        )
        self._report.received += len(rejects)
        self._report.quarantined += len(rejects)
        self._report.problems.extend({"record": n, "messageId": None, "problems": problems} for n, _ in rejects[:20])

    # -- identifiers -----------------------------------------------------------
    def identifier_values(self) -> list[tuple[str, str]]:
        parts = [
            f"SELECT DISTINCT '{kind}' AS kind, ident_{i} AS raw FROM _new WHERE ident_{i} IS NOT NULL"
            for i, (_trait, kind) in enumerate(self.settings.identifier_traits)
        ]
        if not parts:
            return []
        return [(r[0], r[1]) for r in self._rows(" UNION ".join(parts))]

    def set_identifier_values(self, rows: list[tuple[str, str, str | None]]) -> None:
        kept = [r for r in rows if r[2] is not None]
        self._put("_idmap", pa.table({
            "kind": pa.array([r[0] for r in kept], pa.string()),
            "raw": pa.array([r[1] for r in kept], pa.string()),
            "node": pa.array([r[2] for r in kept], pa.string()),
        }))

    def _ident_columns(self) -> list[tuple[int, str]]:
        return [(i, kind) for i, (_t, kind) in enumerate(self.settings.identifier_traits)]

    def _slot_kinds(self) -> tuple[str, ...]:
        """The kind of each ``slot_<j>`` of ``_link_rows``."""
        return (USER, ANON, *(kind for _, kind in self._ident_columns()))

    def links(self) -> Links:
        """The batch's distinct identifier combinations, with each alias's
        previousId typed: a userId if this batch or the graph knows it as one."""
        idents = self._ident_columns()
        joins = "".join(
            f" LEFT JOIN _idmap m{i} ON m{i}.kind = '{kind}' AND m{i}.raw = n.ident_{i}" for i, kind in idents
        )
        node_cols = "".join(f", m{i}.node AS id{i}" for i, _ in idents)
        self._temp("_links", f"""
            SELECT n.seq, n.timestamp, n.type, n.user_id, n.anonymous_id, n.previous_id, n.source{node_cols}
            FROM _new n{joins}""")
        slots = ["user_id", "anonymous_id", *(f"id{i}" for i, _ in idents)]
        slot_cols = ", ".join(f"{c} AS slot_{j}" for j, c in enumerate(slots))
        group = ", ".join([*slots, "prev"])
        self._temp("_link_rows", f"""
            SELECT {slot_cols}, prev AS alias_value,
                   CASE WHEN prev IS NULL THEN NULL
                        WHEN prev IN (SELECT user_id FROM _links WHERE user_id IS NOT NULL)
                          OR EXISTS (SELECT 1 FROM identities i WHERE i.kind = 'user_id' AND i.value = g.prev)
                        THEN '{USER}' ELSE '{ANON}' END AS alias_kind,
                   first_ts
            FROM (SELECT {group}, min(timestamp) AS first_ts
                  FROM (SELECT *, CASE WHEN type = 'alias' THEN previous_id END AS prev FROM _links) l
                  GROUP BY {group}) g""")
        return Links(self.db.arrow("SELECT * FROM _link_rows"), self._slot_kinds())

    def existing(self) -> Existing:
        """The graph's nodes for this batch's identifiers, their profiles, and
        every userId of those profiles (the stitcher's guard counts them)."""
        self._temp("_batch_nodes", " UNION ".join([
            *(f"SELECT '{kind}' AS kind, slot_{j} AS value FROM _link_rows WHERE slot_{j} IS NOT NULL"
              for j, kind in enumerate(self._slot_kinds())),
            "SELECT alias_kind, alias_value FROM _link_rows WHERE alias_value IS NOT NULL"]))
        self._temp("_known_nodes", """SELECT i.kind, i.value, i.profile_id FROM identities i
                                      JOIN _batch_nodes b ON b.kind = i.kind AND b.value = i.value""")
        self._temp("_pids", "SELECT DISTINCT profile_id FROM _known_nodes")
        return Existing(
            self.db.arrow("SELECT kind, value, profile_id FROM _known_nodes"),
            # Every profile the graph names, with or without a row (created_at NULL: an
            # older version's refused links left nodes pointing at profiles that never got one).
            self.db.arrow("""SELECT i.profile_id, p.created_at FROM _pids i
                             LEFT JOIN profiles p ON p.profile_id = i.profile_id"""),
            self.db.arrow("""SELECT i.profile_id, i.value FROM identities i
                             JOIN _pids USING (profile_id) WHERE i.kind = 'user_id'"""))

    def shared_nodes(self) -> set[Node]:
        """Identifier-trait nodes of this batch that earlier batches found shared
        (two users refused a link through them)."""
        return {(k, v) for k, v in self._rows("""
            SELECT DISTINCT c.kind, c.value FROM identity_conflicts c
            JOIN _batch_nodes b ON b.kind = c.kind AND b.value = c.value
            WHERE c.kind NOT IN ('user_id', 'anonymous_id')""")}

    # -- applying the plan -----------------------------------------------------
    def apply(self, plan: StitchPlan) -> None:
        self._plan = plan
        self._put("_assign", plan.assignment)
        self._put("_new_nodes", plan.new_nodes)
        seen = " UNION ALL ".join([
            "SELECT 'user_id' AS kind, user_id AS value, timestamp, source FROM _links WHERE user_id IS NOT NULL",
            "SELECT 'anonymous_id', anonymous_id, timestamp, source FROM _links WHERE anonymous_id IS NOT NULL",
            "SELECT 'user_id', previous_id, timestamp, source FROM _links WHERE previous_id IS NOT NULL",
            "SELECT 'anonymous_id', previous_id, timestamp, source FROM _links WHERE previous_id IS NOT NULL",
            *(f"SELECT '{kind}', id{i}, timestamp, source FROM _links WHERE id{i} IS NOT NULL"
              for i, kind in self._ident_columns())])
        # Each new node's first sighting: when, and from which source.
        self._exec(f"""
            INSERT INTO identities (kind, value, profile_id, first_seen, source)
            SELECT n.kind, n.value, a.profile_id, f.timestamp, f.source
            FROM _new_nodes n JOIN _assign a ON a.kind = n.kind AND a.value = n.value
            LEFT JOIN (SELECT kind, value, timestamp, source,
                              row_number() OVER (PARTITION BY kind, value ORDER BY timestamp, source) AS rn
                       FROM ({seen}) s) f ON f.kind = n.kind AND f.value = n.value AND f.rn = 1""")
        if plan.conflicts:
            self.db.executemany(
                "INSERT INTO identity_conflicts (kind, value, kept_users, refused_users, seen_at) VALUES (?, ?, ?, ?, ?)",
                [[c.node[0], c.node[1], list(c.kept_profile_users), list(c.refused_users), self.now]
                 for c in plan.conflicts],
            )
        self._report.refused_links = len(plan.conflicts)
        if plan.merges:
            self._apply_merges(plan.merges)
        self._stage_stored()
        self._update_traits()
        self._update_consents()
        # After this batch's consents and traits (the region): its events then
        # count only for the profiles that allow collection.
        self._touched = {r[0] for r in self._rows("SELECT DISTINCT profile_id FROM _stored")}
        self._count_profiles()
        self._enforce_collection()
        self._insert_events()
        self._update_profiles()

    def _apply_merges(self, merges: list[tuple[str, str]], reason: str = "identify") -> None:
        self._put("_merges", pa.table({
            "from_profile": pa.array([m[0] for m in merges], pa.string()),
            "into_profile": pa.array([m[1] for m in merges], pa.string()),
        }))
        self._exec("INSERT INTO profile_merges (from_profile, into_profile, merged_at, reason) "
                   "SELECT from_profile, into_profile, ?, ? FROM _merges", [self.now, reason])
        self._exec("""UPDATE identities SET profile_id = m.into_profile FROM _merges m
                      WHERE identities.profile_id = m.from_profile""")
        # Old ids keep resolving: point every redirect at the final survivor.
        self._exec("""UPDATE profile_redirects SET to_profile = m.into_profile FROM _merges m
                      WHERE profile_redirects.to_profile = m.from_profile""")
        self._exec(upsert("profile_redirects", ["from_profile", "to_profile"], ["from_profile"],
                          "SELECT from_profile, into_profile AS to_profile FROM _merges", set_sql={}))
        self._temp("_folded", self.compile(self.rules.folded))
        self._exec("DELETE FROM profiles WHERE profile_id IN (SELECT from_profile FROM _merges)")
        self._exec(upsert("profiles", aggregates.PROFILE_COLUMNS, [aggregates.PROFILE_KEY], "SELECT * FROM _folded"))
        # The merged profiles' rows move onto the survivor, by the same policies as new observations.
        moves: list[tuple[str, str, tuple[str, ...], Any, traits.Replaces]] = [
            ("profile_traits", "key", traits.TRAIT_COLUMNS, moved, traits.REPLACES[policy])
                 for policy, moved in self.rules.moved_traits.items()]
        moves.append(("profile_consents", "purpose", traits.CONSENT_COLUMNS, self.rules.moved_consents, "not_older"))
        for i, (table, key, columns, moved, replaces) in enumerate(moves):
            self._temp(f"_moved{i}", self.compile(moved))
        for table in ("profile_traits", "profile_consents"):
            self._exec(f"DELETE FROM {table} WHERE profile_id IN (SELECT from_profile FROM _merges)")
        for i, (table, key, columns, moved, replaces) in enumerate(moves):
            # Ties keep the survivor's own row.
            newer = "<" if replaces == "older" else ">"
            self._exec(upsert(table, columns, ["profile_id", key], f"SELECT * FROM _moved{i}",
                              where=f"excluded.observed_at {newer} {table}.observed_at"))
        self._exec("""UPDATE consent_log SET profile_id = m.into_profile FROM _merges m
                      WHERE consent_log.profile_id = m.from_profile""")
        self._report.merges = len(merges)

    def _stage_stored(self) -> None:
        """_stored: the batch's new events, attributed to their profiles."""
        rates = self.settings.currency_rates
        self._put("_rates", pa.table({
            "currency": pa.array([c for c, _ in rates], pa.string()),
            "rate": pa.array([r for _, r in rates], pa.float64()),
        }))
        self._temp("_std_traits", self._std_traits_select())
        self._temp("_stored", self.compile(self.rules.stored))
        self._put_clock()

    def _put_clock(self) -> None:
        """_batch_clock: the batch's time, for the rules that need it (aggregates, consent times)."""
        self._put("_batch_clock", pa.table({"now": pa.array([self.now], pa.timestamp("us", tz="UTC"))}))

    def _enforce_collection(self) -> None:
        """The events of profiles the consent policy refuses for collection
        leave _stored: minimized into events_minimized, or dropped; each
        refused profile's refusal is recorded once per batch."""
        refused = self.rules.collection_refused
        if refused is None:
            return
        self._temp("_collect_refused", self.compile(refused))
        n = self._rows("SELECT count(*) FROM _stored WHERE profile_id IN (SELECT profile_id FROM _collect_refused)")[0][0]
        if not n:
            return
        if self.rules.collection_mode == "minimize":
            cols = ", ".join(MINIMIZED_COLUMNS)
            self._exec(f"""INSERT INTO events_minimized ({cols}, stored_at)
                           SELECT {cols}, CAST(? AS TIMESTAMPTZ) FROM _stored
                           WHERE profile_id IN (SELECT profile_id FROM _collect_refused)""", [self.now])
        self._exec("DELETE FROM _stored WHERE profile_id IN (SELECT profile_id FROM _collect_refused)")
        self._exec("""INSERT INTO consent_refusals (refused_at, profile_id, use, purpose, reason)
                      SELECT CAST(? AS TIMESTAMPTZ), profile_id, 'collection', CAST(? AS TEXT), reason
                      FROM _collect_refused""",
                   [self.now, self.rules.collection_purpose])
        self._report.refused_collection = int(n)

    def _insert_events(self) -> None:
        cols = ", ".join(EVENT_COLUMNS)
        self._exec(f"INSERT INTO events ({cols}) SELECT {cols} FROM _stored")

    def _count_profiles(self) -> None:
        created, touched = self._rows("""
            SELECT count(*) FILTER (WHERE p.profile_id IS NULL), count(*)
            FROM (SELECT DISTINCT profile_id FROM _stored) s LEFT JOIN profiles p USING (profile_id)""")[0]
        self._report.profiles_created, self._report.profiles_touched = created, touched

    def _update_profiles(self) -> None:
        self._put_clock()
        # Materialized first: the aggregates read the stored profiles, and on DuckDB
        # an upsert whose SELECT reads its own target took 7 s on the later
        # 250k-event chunks of a 1M-event import, against 0.5 s this way.
        self._temp("_batch_profiles", self.compile(self.rules.profiles))
        self._exec(combine_upsert("profiles", aggregates.COMBINE, aggregates.PROFILE_KEY,
                                  "SELECT * FROM _batch_profiles"))
        if self._report.refused_collection:
            # A profile whose events were all refused still exists: it holds the
            # identities, traits and consents that say so, with no behaviour.
            self._exec(upsert("profiles", ["profile_id", "created_at", "updated_at"], ["profile_id"],
                              "SELECT profile_id, CAST(? AS TIMESTAMPTZ) AS created_at, CAST(? AS TIMESTAMPTZ) AS updated_at "
                              "FROM _collect_refused",
                              set_sql={"updated_at": "excluded.updated_at"}), [self.now, self.now])

    def _update_traits(self) -> None:
        self._temp("_trait_kv", self._trait_kv_select())
        for policy, winners in self.rules.traits.items():
            newer = "<" if traits.REPLACES[policy] == "older" else ">="
            # An imputed value only stands in until a real observation arrives.
            self._exec(upsert("profile_traits", traits.TRAIT_COLUMNS, ["profile_id", "key"], self.compile(winners),
                              where=f"excluded.observed_at {newer} profile_traits.observed_at "
                                    f"OR profile_traits.origin = '{traits.IMPUTED}'"))

    def _update_consents(self, log: bool = True) -> None:
        self._temp("_consent_kv", self._consent_kv_select())
        cols = ", ".join(traits.CONSENT_COLUMNS)
        if log:
            self._exec(f"INSERT INTO consent_log ({cols}) SELECT {cols} FROM ({self.compile(self.rules.consent_log)}) c")
        self._exec(upsert("profile_consents", traits.CONSENT_COLUMNS, ["profile_id", "purpose"],
                          self.compile(self.rules.consents),
                          where="excluded.observed_at >= profile_consents.observed_at"))

    def changed_profiles(self) -> tuple[list[str], list[str]]:
        """Profiles this batch touched (survivors included) and profiles merged away."""
        touched = self._touched
        merges = self._plan.merges if self._plan else []
        return sorted(touched | {m[1] for m in merges}), [m[0] for m in merges]

    def commit_log_positions(self, stream: str, positions: Mapping[int, int]) -> None:
        self.db.executemany(upsert("log_positions", ["stream", "partition", "committed", "updated_at"],
                                   ["stream", "partition"],
                                   "SELECT ? AS stream, ? AS partition, ? AS committed, ? AS updated_at"),
                            [[stream, p, pos, self.now] for p, pos in sorted(positions.items())])

    def report(self) -> IngestReport:
        return self._report
