"""The write path on DuckDB: the hooks under ``adapters.sql.SqlBatch``.

The orchestration and the rules are shared (``adapters/sql/write_batch.py``,
``profiles/``, ``events/``). What is DuckDB's own: staging Arrow tables by
reference, parsing and validating raw lines in bulk in one statement
(``parse_sql``, generated from the event spec), and its JSON idioms.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import duckdb
import pyarrow as pa

from ...ports import PipelineSettings, StagedInput
from ..sql.compiler import SqlCompiler
from ...profiles.traits import GPC
from ..sql.write_batch import SqlBatch
from .session import DuckDBSession
from .batch_quality import DuckDBQualityHooks
from .parse_sql import parse_sql, q


# What each staged line carries from its batch.
_BATCH_COLUMNS = (("received_at", "TIMESTAMPTZ"), ("source", "VARCHAR"), ("origin", "VARCHAR"),
                  ("require_ts", "BOOLEAN"))


class ParseStatements:
    """The parse statement per (identifier traits, validate), generated once per store."""

    def __init__(self) -> None:
        self._cache: dict[tuple[object, ...], str] = {}

    def __call__(self, settings: PipelineSettings, validate: bool, source: str = "_stg") -> str:
        key = (settings.identifier_traits, validate, source)
        if key not in self._cache:
            self._cache[key] = parse_sql(list(settings.identifier_traits), validate, source=source)
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
        return f"""
            WITH raw AS (
                SELECT profile_id, seq, timestamp, source, message_id, 'context' AS via,
                       unnest(map_entries(json_transform(consent_context, '"MAP(VARCHAR, JSON)"'))) AS e
                FROM _stored WHERE consent_context IS NOT NULL
                UNION ALL
                SELECT profile_id, seq, timestamp, source, message_id, 'traits',
                       unnest(map_entries(json_transform(consent_traits, '"MAP(VARCHAR, JSON)"')))
                FROM _stored WHERE consent_traits IS NOT NULL
            )
            SELECT profile_id, seq, timestamp, source, message_id, e.key AS purpose,
                   (e.value ->> '$')::BOOLEAN AS granted, via
            FROM raw
            UNION ALL
            SELECT profile_id, seq, timestamp, source, message_id, '{GPC}', false, '{GPC}'
            FROM _stored WHERE json_extract(context, '$.consent.gpc') = 'true'::JSON"""

    def _std_traits_select(self) -> str:
        return """SELECT seq, json_group_object(field, value) AS std_traits FROM _tv
                  WHERE status IN ('standardized', 'observed') GROUP BY seq"""

    # -- staging, validation, quarantine, dedupe ---------------------------
    def stage(self, mode: str, first: int = 0, last: int = 0) -> None:
        con, s = self.con, self.staged
        values = (self.now, s.source, s.origin, s.require_timestamp)
        if mode == "lines":
            # received_at and source come from the batch, unless the lines carry
            # their own (lines replayed from the event log do).
            own = set(s.lines.column_names) if s.lines is not None else set()
            select = [f"{c}::{t} AS {c}" if c in own else f"?::{t} AS {c}" for c, t in _BATCH_COLUMNS]
            params = [v for (c, _), v in zip(_BATCH_COLUMNS, values) if c not in own]
            con.register("_lines", s.lines)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _stg AS SELECT row_number() OVER () AS seq, line, "
                        f"{', '.join(select)} FROM _lines", params)
            con.unregister("_lines")
            source = "_stg"
        else:
            # A view over the file's lines, not a copy of the chunk (0.3 s per
            # 250k full-context lines); a view takes no parameters, so the
            # batch's values are literals.
            literals = [f"{'NULL' if v is None else q(v.isoformat() if isinstance(v, datetime) else str(v))}::{t} AS {c}"
                        for (c, t), v in zip(_BATCH_COLUMNS, values)]
            con.execute(f"CREATE OR REPLACE TEMP VIEW _stg_file AS SELECT seq, line, {', '.join(literals)} "
                        f"FROM _file_lines WHERE seq BETWEEN {int(first)} AND {int(last)}")
            source = "_stg_file"
        if self.settings.minimize_json:
            source = _minimized(con, source, self.settings.minimize_json)
        validate = not s.validated
        parse_params: dict = {"junk": list(self.settings.junk_values)}
        if validate:
            parse_params["max_future_hours"] = self.settings.max_future_hours
        con.execute(self._parse_statement(self.settings, validate, source), parse_params)


def _minimized(con: duckdb.DuckDBPyConnection, source: str, rules_json: str) -> str:
    """A copy of ``source`` whose lines are minimized (privacy/minimize.py, the one implementation, run on
    the batch's lines in Python: a DuckDB Python function dies with the connection that made it)."""
    from ...privacy.minimize import minimizer

    cut = minimizer(rules_json)
    table = con.sql(f"SELECT * FROM {source}").to_arrow_table()
    lines = [cut.line(line, src) for line, src in zip(table["line"].to_pylist(), table["source"].to_pylist())]
    table = table.set_column(table.schema.get_field_index("line"), "line", pa.array(lines, pa.string()))
    con.register("_stg_minimized_in", table)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _stg_minimized AS SELECT * FROM _stg_minimized_in")
    finally:
        con.unregister("_stg_minimized_in")
    return "_stg_minimized"
