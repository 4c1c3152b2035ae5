"""Erasure on any SQL store (``ErasureStore``): what the registry names, found
by SQL written once; a regular expression finds a person inside free text."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ...privacy.person_text import alternations, escape
from .session import SqlSession
from .store_base import SqlStoreBase

if TYPE_CHECKING:
    from ...ports.erasure import Subject, TextPattern
    from ...privacy.personal_data import PersonalTable

# Column types a person's text can hide in (DuckDB's and PostgreSQL's names).
TEXTY = ("CHAR", "TEXT", "JSON", "[]", "STRUCT", "ARRAY", "MAP")
ERASURE = ("erasure_id", "requested_at", "requested_by", "subject_digest", "state", "subject", "certificate",
           "finished_at")


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

    def note_erasure(self, erasure_id: str, progress: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE erasures SET certificate = ? WHERE erasure_id = ? AND state = 'pending'",
                       [progress, erasure_id])

    # -- the person's rows ---------------------------------------------------------------------
    def person(self, profile_ids: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        db = self._session()
        profiles, frontier = set(profile_ids), list(profile_ids)
        # The profiles merged into theirs, as the redirects say: an undone merge leaves its row in
        # profile_merges (history) but takes its redirect away, and that profile is someone else's again.
        while frontier:
            rows = db.rows(f"SELECT from_profile FROM profile_redirects WHERE {db.in_list('to_profile')}", [frontier])
            frontier = [str(r[0]) for r in rows if r[0] not in profiles]
            profiles.update(frontier)
        ids = db.rows(f"SELECT kind, value FROM identities WHERE {db.in_list('profile_id')}", [sorted(profiles)])
        return sorted(profiles), sorted((str(k), str(v)) for k, v in ids)

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
                     patterns: list["TextPattern"]) -> tuple[str, list[Any]]:
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
        for columns, whole in ((spec.text, False), (spec.names, True)):
            for column in columns:
                for p in (p for p in patterns if p.whole == whole):
                    where.append(db.matches(f"lower(CAST({column} AS TEXT))" if p.lower else column, "?"))
                    params.append(p.regex)
        return " OR ".join(f"({w})" for w in where), params

    def erase_rows(self, subject: "Subject", tables: "Mapping[str, PersonalTable]", patterns: list["TextPattern"],
                   redaction: Callable[[dict[str, Any]], str], erasure_id: str | None = None) -> dict[str, int]:
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
                    rows = db.dicts(f"SELECT * FROM {name} WHERE ({where}) AND redacted IS NULL", params)
                    blanks = ", ".join(f"{c} = NULL" for c in (*spec.text, *spec.names))
                    if rows:
                        db.executemany(f"UPDATE {name} SET {blanks}, redacted = ? WHERE seq = ?",
                                       [(redaction(r), r["seq"]) for r in rows])
                    counts[name] = len(rows)
                else:
                    counts[name] = int(db.rows(f"SELECT count(*) FROM {name} WHERE {where}", params)[0][0])
                    if counts[name]:
                        db.execute(f"DELETE FROM {name} WHERE {where}", params)
            if erasure_id is not None:
                self._add_progress(db, erasure_id, counts)
        return counts

    def _add_progress(self, db: SqlSession, erasure_id: str, counts: dict[str, int]) -> None:
        found = db.rows("SELECT certificate FROM erasures WHERE erasure_id = ?", [erasure_id])
        progress = json.loads(found[0][0]) if found and found[0][0] else {}
        tables = progress.setdefault("tables", {})
        for table, n in counts.items():
            if n:
                tables[table] = tables.get(table, 0) + n
        db.execute("UPDATE erasures SET certificate = ? WHERE erasure_id = ?", [json.dumps(progress), erasure_id])

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
        patterns = [f"(^|[^A-Za-z0-9_])(?:{group})($|[^A-Za-z0-9_])" for group in alternations(needles)]
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
