"""The audit chain on any SQL store (``AuditStore``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pyarrow as pa

from ...ports.audit import Extend
from .session import SqlSession
from .store_base import SqlStoreBase

GENESIS = "0" * 64
# Column names; "at" is the record's time (a reserved word in SQL: stored as recorded_at / signed_at).
RECORD = ("seq", "at", "actor", "action", "target", "outcome", "details", "prev_mac", "mac")
CHECKPOINT = ("seq", "mac", "at", "signature")


def _cols(names: tuple[str, ...], at: str = "recorded_at") -> str:
    return ", ".join(at if n == "at" else n for n in names)


class AuditStoreMixin(SqlStoreBase):
    def append_audit(self, extend: Extend) -> None:
        with self._writing() as db:
            self._hold_audit(db)
            head = db.rows("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1")
            rows, checkpoint = extend(*(head[0] if head else (0, GENESIS)))
            if not rows:
                return
            names = [c if c != "at" else "recorded_at" for c in RECORD]
            db.put("_audit_new", pa.table({n: [r[c] for r in rows] for n, c in zip(names, RECORD)}, schema=pa.schema([
                ("seq", pa.int64()), ("recorded_at", pa.timestamp("us", tz="UTC")), ("actor", pa.string()),
                ("action", pa.string()), ("target", pa.string()), ("outcome", pa.string()),
                ("details", pa.string()), ("prev_mac", pa.string()), ("mac", pa.string())])))
            db.execute(f"INSERT INTO audit_log ({', '.join(names)}) SELECT {', '.join(names)} FROM _audit_new")
            db.execute("INSERT INTO audit_checkpoints (seq, mac, signed_at, signature) VALUES (?, ?, ?, ?)",
                       [checkpoint["seq"], checkpoint["mac"], datetime.fromisoformat(checkpoint["at"]),
                        checkpoint["signature"]])

    def audit_records(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        rows = self._session().rows(f"SELECT {_cols(RECORD)}, redacted FROM audit_log WHERE seq > ? ORDER BY seq "
                                    "LIMIT ?", [after_seq, limit])
        return [dict(zip((*RECORD, "redacted"), r)) for r in rows]

    def audit_checkpoints(self) -> list[dict[str, Any]]:
        return [dict(zip(CHECKPOINT, r)) for r in self._session().rows(
            f"SELECT {_cols(CHECKPOINT, 'signed_at')} FROM audit_checkpoints ORDER BY seq")]

    def audit_query(self, actor: str | None, action: str | None, target: str | None, since: datetime | None,
                    limit: int) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("actor", actor), ("action", action), ("target", target)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("recorded_at >= ?")
            params.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._session().rows(f"SELECT {_cols(RECORD[:7])}, redacted IS NOT NULL FROM audit_log {clause} "
                                    f"ORDER BY seq DESC LIMIT ?", [*params, limit])
        out = []
        for r in rows:
            item = dict(zip((*RECORD[:7], "redacted"), r))
            item["at"] = item["at"].isoformat()
            item["details"] = json.loads(item["details"]) if item["details"] else None
            out.append(item)
        return out
