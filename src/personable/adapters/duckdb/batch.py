"""The write path on DuckDB: the hooks under ``adapters.sql.SqlBatch``.

The orchestration and the rules are shared (``adapters/sql/write_batch.py``,
``profiles/``, ``events/``). What is DuckDB's own: staging Arrow tables by
reference, parsing and validating raw lines in bulk in one statement
(``parse_sql``, generated from the event spec), and its JSON idioms.
"""

from __future__ import annotations

from typing import Any, Sequence

import duckdb
import pyarrow as pa

from ...ports import PipelineSettings, StagedInput
from ..sql.compiler import SqlCompiler
from ..sql.write_batch import SqlBatch
from .session import DuckDBSession
from .batch_quality import DuckDBQualityHooks
from .parse_sql import parse_sql, q


class ParseStatements:
    """The parse statement per (identifier traits, validate), generated once per store."""

    def __init__(self) -> None:
        self._cache: dict[tuple[object, ...], str] = {}

    def __call__(self, settings: PipelineSettings, validate: bool) -> str:
        key = (settings.identifier_traits, validate)
        if key not in self._cache:
            self._cache[key] = parse_sql(list(settings.identifier_traits), validate)
        return self._cache[key]


class DuckDBBatch(DuckDBQualityHooks, SqlBatch):
    def __init__(self, con: duckdb.DuckDBPyConnection, staged: StagedInput, settings: PipelineSettings,
                 compile: SqlCompiler, parse_statement: ParseStatements):
        super().__init__(DuckDBSession(con), staged, settings, compile)
        self.con = con
        self._parse_statement = parse_statement

    # -- hooks -------------------------------------------------------------------
    def _problems_value(self, problems: list[dict[str, str]]) -> Any:
        return problems

    def _problem_sample(self) -> list[dict[str, Any]]:
        rows = self.con.execute("""SELECT seq, message_id, problems FROM _parsed
                                   WHERE len(problems) > 0 ORDER BY seq LIMIT 20""").fetchall()
        return [{"record": seq, "messageId": mid, "problems": probs} for seq, mid, probs in rows]

    def _trait_kv_select(self) -> str:
        # Configured fields carry their standard form (_tv, see batch_quality).
        return """
            WITH kv AS (
                SELECT profile_id, seq, timestamp, source, message_id,
                       unnest(map_entries(json_transform(traits, '"MAP(VARCHAR, JSON)"'))) AS e
                FROM _stored WHERE type = 'identify' AND json_type(traits) = 'OBJECT'
            )
            SELECT kv.profile_id, kv.seq, kv.timestamp, kv.source, kv.message_id, e.key AS key,
                   CASE WHEN tv.status = 'standardized' THEN to_json(tv.value) ELSE e.value END AS value,
                   CASE WHEN tv.status = 'standardized' THEN e.value END AS raw_value,
                   coalesce(tv.status, 'observed') AS origin, tv.status
            FROM kv LEFT JOIN _tv tv ON tv.seq = kv.seq AND tv.field = e.key"""

    def _consent_kv_select(self) -> str:
        return """
            WITH raw AS (
                SELECT profile_id, seq, timestamp, source, message_id,
                       unnest(map_entries(json_transform(consent_context, '"MAP(VARCHAR, JSON)"'))) AS e
                FROM _stored WHERE consent_context IS NOT NULL
                UNION ALL
                SELECT profile_id, seq, timestamp, source, message_id,
                       unnest(map_entries(json_transform(consent_traits, '"MAP(VARCHAR, JSON)"')))
                FROM _stored WHERE consent_traits IS NOT NULL
            )
            SELECT profile_id, seq, timestamp, source, message_id, e.key AS purpose,
                   (e.value ->> '$')::BOOLEAN AS granted
            FROM raw"""

    def _std_traits_select(self) -> str:
        return """SELECT seq, json_group_object(field, value) AS std_traits FROM _tv
                  WHERE status IN ('standardized', 'observed') GROUP BY seq"""

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
