"""The write path on PostgreSQL: the hooks under ``adapters.sql.SqlBatch``.

Raw lines are parsed and validated in Python (``events.parse``, the one
implementation of the spec for stores that do not compile it) and copied into
``_parsed``; everything after that is the shared SQL of ``SqlBatch`` with
PostgreSQL's JSON idioms below. Temporary tables live for the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Sequence

import orjson
import pyarrow as pa

from ...events.parse import COLUMNS, ParseContext, parse_lines
from ...ports import PipelineSettings, StagedInput
from ...profiles.traits import GPC
from ..sql.write_batch import SqlBatch
from .session import PostgresSession, copy_rows
from ..sql.quality_staging import q

_PARSED_TYPES = {
    "seq": "BIGINT", "received_at": "TIMESTAMPTZ", "timestamp": "TIMESTAMPTZ", "original_timestamp": "TIMESTAMPTZ",
    "sent_at": "TIMESTAMPTZ", "revenue": "DOUBLE PRECISION", "context": "JSONB", "properties": "JSONB",
    "traits": "JSONB", "consent_context": "JSONB", "consent_traits": "JSONB", "problems": "JSONB",
}


class PostgresBatch(SqlBatch):
    NO_PROBLEMS = "jsonb_array_length(problems) = 0"

    def __init__(self, con: Any, staged: StagedInput, settings: PipelineSettings, compile: Callable[[Any], str]):
        super().__init__(PostgresSession(con), staged, settings, compile)
        self.con = con

    # -- hooks -------------------------------------------------------------------
    def _problems_value(self, problems: list[dict[str, str]]) -> Any:
        return orjson.dumps(problems).decode()

    def _problem_sample(self) -> list[dict[str, Any]]:
        rows = self.con.execute("""SELECT seq, message_id, problems FROM _parsed
                                   WHERE jsonb_array_length(problems) > 0 ORDER BY seq LIMIT 20""").fetchall()
        return [{"record": seq, "messageId": mid, "problems": orjson.loads(probs)} for seq, mid, probs in rows]

    def _trait_kv_select(self) -> str:
        # jsonb_each of a non-object fails, and a WHERE does not guard a lateral call: the CASE does.
        return """
            SELECT s.profile_id, s.seq, s.timestamp, s.source, s.message_id, e.key,
                   CASE WHEN tv.status = 'standardized' THEN to_jsonb(tv.value) ELSE e.value END AS value,
                   CASE WHEN tv.status = 'standardized' THEN e.value END AS raw_value,
                   coalesce(tv.status, 'observed') AS origin, tv.status
            FROM _stored s
            CROSS JOIN LATERAL jsonb_each(CASE WHEN s.type = 'identify' AND jsonb_typeof(s.traits) = 'object'
                                               THEN s.traits ELSE '{}'::jsonb END) e
            LEFT JOIN _tv tv ON tv.seq = s.seq AND tv.field = e.key"""

    def _consent_kv_select(self) -> str:
        parts = []
        for column, via in (("consent_context", "context"), ("consent_traits", "traits")):
            parts.append(f"""
                SELECT s.profile_id, s.seq, s.timestamp, s.source, s.message_id, e.key AS purpose,
                       (e.value #>> '{{}}')::BOOLEAN AS granted, '{via}' AS via
                FROM _stored s
                CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(s.{column}) = 'object'
                                                   THEN s.{column} ELSE '{{}}'::jsonb END) e""")
        parts.append(f"""
                SELECT profile_id, seq, timestamp, source, message_id, '{GPC}', false, '{GPC}' FROM _stored
                WHERE context #> '{{consent,gpc}}' = 'true'::jsonb""")
        return " UNION ALL ".join(parts)

    def _std_traits_select(self) -> str:
        return """SELECT seq, jsonb_object_agg(field, value) AS std_traits FROM _tv
                  WHERE status IN ('standardized', 'observed') GROUP BY seq"""

    def _field_rows_sql(self, fields: list[tuple[str, str | None]], table: str, valid_only: bool) -> str:
        cond = "type = 'identify' AND jsonb_typeof(traits) = 'object'"
        if valid_only:
            cond += f" AND {self.NO_PROBLEMS}"
        parts = []
        for name, hint in fields:
            hint_sql = f"traits ->> {q(hint)}" if hint else "NULL::TEXT"
            parts.append(f"SELECT seq, {q(name)} AS field, traits ->> {q(name)} AS raw, {hint_sql} AS hint "
                         f"FROM {table} WHERE {cond} "
                         f"AND jsonb_typeof(traits -> {q(name)}) IN ('string', 'number', 'boolean')")
        return " UNION ALL ".join(parts)

    def _append_rule_problems(self, problems_sql: str) -> None:
        self._temp("_rule_problems", f"""
            SELECT seq, jsonb_agg(jsonb_build_object('path', path, 'problem', problem) ORDER BY path, problem)
                   AS problems
            FROM ({problems_sql}) p GROUP BY seq""")
        self.con.execute("""UPDATE _parsed SET problems = _parsed.problems || r.problems
                            FROM _rule_problems r WHERE _parsed.seq = r.seq""")

    # -- staging: parse in Python, copy in ---------------------------------------------
    def stage_lines(self, lines: Iterable[tuple[int, str | None]],
                    own: Iterable[tuple[str | None, datetime | None]] | None = None) -> None:
        """``own``: per line, the source and receive time it carries (lines
        replayed from the event log), else the batch's."""
        s, st = self.staged, self.settings
        ctx = ParseContext(received_at=self.now, source=s.source, origin=s.origin,
                           require_timestamp=s.require_timestamp, junk=frozenset(st.junk_values),
                           max_future=timedelta(hours=st.max_future_hours),
                           identifier_traits=st.identifier_traits, validate=not s.validated,
                           minimize=st.minimize_json)
        records = parse_lines(lines, ctx, own)
        idents = [f"ident_{i}" for i in range(len(st.identifier_traits))]
        columns = [*COLUMNS, *idents, "problems"]
        defs = ", ".join(f"{c} {_PARSED_TYPES.get(c, 'TEXT')}" for c in columns)
        self.con.execute("DROP TABLE IF EXISTS _parsed")
        self.con.execute(f"CREATE TEMP TABLE _parsed ({defs}) ON COMMIT DROP")
        with self.db.refused("COPY _parsed"), self.con.cursor() as cur:
            copy_rows(cur, "_parsed", columns, (
                [*(r[c] for c in COLUMNS), *(r[c] for c in idents), orjson.dumps(r["problems"]).decode()]
                for r in records))
