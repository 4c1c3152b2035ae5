"""Erasure on any SQL store (``ErasureStore``): what the registry names, found
by SQL written once; a regular expression finds a person inside free text."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .session import SqlSession
from .store_base import SqlStoreBase

if TYPE_CHECKING:
    from ...ports.erasure import Subject
    from ...privacy.personal_data import PersonalTable

# Column types a person's text can hide in (DuckDB's and PostgreSQL's names).
TEXTY = ("CHAR", "TEXT", "JSON", "[]", "STRUCT", "ARRAY", "MAP")
ALTERNATIVES = 200     # needles per regular expression: long alternations stay cheap to compile
ERASURE = ("erasure_id", "requested_at", "requested_by", "subject_digest", "state", "subject", "certificate",
           "finished_at")


def escape(text: str) -> str:
    """``text`` as a literal in a regular expression that RE2 (DuckDB) and PostgreSQL both read."""
    return "".join("\\" + ch if ch in "\\.^$|?*+()[]{}-/" else ch for ch in text)


def _groups(items: list[str]) -> list[list[str]]:
    return [items[i:i + ALTERNATIVES] for i in range(0, len(items), ALTERNATIVES)]


def text_patterns(needles: list[str]) -> list[str]:
    """Patterns that find a needle inside text as a whole JSON string (``"u1"``, not ``"u10"``), or as the
    whole text, optionally behind a ``kind:`` prefix (an audit target such as ``user_id:u1``)."""
    out = []
    for group in _groups(sorted(needles)):
        quoted = "|".join(escape(json.dumps(n, ensure_ascii=False)[1:-1]) for n in group)
        out.append(f'"(?:{quoted})"|^(?:[a-z_]+:)?(?:{quoted})$')
    return out


class ErasureStoreMixin(SqlStoreBase):
    def _columns(self, db: SqlSession) -> dict[str, list[tuple[str, str]]]:
        rows = db.rows("""
            SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
            WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
            ORDER BY c.table_name, c.ordinal_position""")
        out: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in rows:
            out.setdefault(str(table), []).append((str(column), str(kind)))
        return out

    def table_columns(self) -> dict[str, list[str]]:
        return {t: [c for c, _ in cols] for t, cols in self._columns(self._session()).items()}

    # -- requests ------------------------------------------------------------------------------
    def open_erasure(self, erasure_id: str, at: datetime, requested_by: str, digest: str, subject: str) -> None:
        with self._writing() as db:
            db.execute("INSERT INTO erasures (erasure_id, requested_at, requested_by, subject_digest, state, subject) "
                       "VALUES (?, ?, ?, ?, 'pending', ?)", [erasure_id, at, requested_by, digest, subject])

    def erasures(self, erasure_id: str | None = None, digest: str | None = None,
                 pending: bool = False) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("erasure_id", erasure_id), ("subject_digest", digest)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if pending:
            where.append("state <> 'done'")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._session().rows(f"SELECT {', '.join(ERASURE)} FROM erasures {clause} "
                                    "ORDER BY requested_at DESC, erasure_id", params)
        out = []
        for r in rows:
            item = dict(zip(ERASURE, r))
            for key in ("subject", "certificate"):
                item[key] = json.loads(item[key]) if item[key] else None
            out.append(item)
        return out

    def close_erasure(self, erasure_id: str, at: datetime, certificate: str, state: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE erasures SET state = ?, subject = NULL, certificate = ?, finished_at = ? "
                       "WHERE erasure_id = ?", [state, certificate, at, erasure_id])

    # -- the person's rows ---------------------------------------------------------------------
    def personal_values(self, profile_ids: list[str], keys: list[str]) -> list[str]:
        if not profile_ids or not keys:
            return []
        db = self._session()
        mine, key = db.in_list("profile_id"), db.in_list("key")
        parts = [f"SELECT {db.json_text('value')} AS v FROM profile_traits WHERE {mine} AND {key}",
                 f"SELECT {db.json_text('raw_value')} AS v FROM profile_traits WHERE {mine} AND {key}"]
        params: list[Any] = [profile_ids, keys, profile_ids, keys]
        for k in keys:
            for column in ("traits", "std_traits", db.json_object_at("context", "traits")):
                parts.append(f"SELECT {db.json_field_text(column, k)} AS v FROM events WHERE {mine}")
                params.append(profile_ids)
        rows = db.rows(f"SELECT DISTINCT v FROM ({' UNION ALL '.join(parts)}) found "
                       "WHERE v IS NOT NULL AND v <> ''", params)
        return sorted(str(r[0]) for r in rows)

    def _person_rows(self, db: SqlSession, spec: "PersonalTable", subject: "Subject",
                     patterns: list[str]) -> tuple[str, list[Any]]:
        """The WHERE clause (and its parameters) of a table's rows of the subject."""
        where: list[str] = []
        params: list[Any] = []

        def add(columns: tuple[str, ...], values: list[str], sql: Callable[[str], str]) -> None:
            if values:
                for c in columns:
                    where.append(sql(c))
                    params.append(values)

        add(spec.profiles, subject.profiles, db.in_list)
        add(spec.users, subject.users, db.in_list)
        add(spec.anonymous, subject.anonymous, db.in_list)
        add(spec.either, sorted({*subject.users, *subject.anonymous}), db.in_list)
        add(spec.user_lists, subject.users, db.lists_overlap)
        if spec.identity and subject.identities:
            kind, value = spec.identity
            where.append(db.in_list(f"({kind} || ':' || {value})"))
            params.append(subject.identities)
        for column in spec.text:
            for pattern in patterns:
                where.append(db.matches(column, "?"))
                params.append(pattern)
        return " OR ".join(f"({w})" for w in where), params

    def erase_rows(self, subject: "Subject", tables: "Mapping[str, PersonalTable]",
                   redaction: Callable[[dict[str, Any]], str]) -> dict[str, int]:
        patterns = text_patterns(subject.needles())
        counts: dict[str, int] = {}
        with self._writing() as db:
            self._hold_audit(db)       # a redaction must not race an append to the chain
            present = self._columns(db)
            for name, spec in tables.items():
                if name not in present:
                    continue
                where, params = self._person_rows(db, spec, subject, patterns)
                if not where:
                    continue
                if spec.redact:
                    rows = db.dicts(f"SELECT * FROM {name} WHERE {where}", params)
                    blanks = ", ".join(f"{c} = NULL" for c in spec.text)
                    if rows:
                        db.executemany(f"UPDATE {name} SET {blanks}, redacted = ? WHERE seq = ?",
                                       [(redaction(r), r["seq"]) for r in rows])
                    counts[name] = len(rows)
                else:
                    counts[name] = int(db.rows(f"SELECT count(*) FROM {name} WHERE {where}", params)[0][0])
                    if counts[name]:
                        db.execute(f"DELETE FROM {name} WHERE {where}", params)
        return counts

    def compact(self) -> bool:
        """Nothing by default: a server database reclaims dead rows itself (autovacuum)."""
        return True

    # -- verification --------------------------------------------------------------------------
    def scan(self, needles: list[str]) -> list[dict[str, Any]]:
        needles = sorted({n for n in needles if n})
        if not needles:
            return []
        db = self._session()
        # A needle counts where it stands alone: not "a1" inside a hexadecimal id.
        patterns = [f"(^|[^A-Za-z0-9_])(?:{'|'.join(escape(n) for n in group)})($|[^A-Za-z0-9_])"
                    for group in _groups(needles)]
        found = []
        for table, columns in self._columns(db).items():
            for column, kind in columns:
                if not any(t in kind.upper() for t in TEXTY):
                    continue
                hit = " OR ".join(db.matches(column) for _ in patterns)
                rows = int(db.rows(f"SELECT count(*) FROM {table} WHERE {hit}", patterns)[0][0])
                if rows:
                    which = [n for n in needles if db.rows(
                        f"SELECT 1 FROM {table} WHERE {db.matches(column)} LIMIT 1",
                        [f"(^|[^A-Za-z0-9_]){escape(n)}($|[^A-Za-z0-9_])"])]
                    found.append({"where": f"table {table}", "column": column, "rows": rows, "values": which})
        return found
