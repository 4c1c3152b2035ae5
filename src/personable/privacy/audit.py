"""The audit log: who read or changed what, in a tamper-evident chain.

Every record carries ``mac = HMAC-SHA256(audit_key, prev_mac || record)``
(``record``: its sequence number, time, actor, action, outcome and the keyed
digests of its target and details, as canonical JSON), so a changed, removed
or reordered record breaks the chain from there on. The target and details
enter by digest so that an erasure can take a person's ids out of the log
(GDPR Art. 17) without breaking it: a redacted record keeps only the digests
of what it lost, and still verifies; a forger without the key cannot make them. Each append ends with a checkpoint, the last
sequence number and mac signed with the project's Ed25519 key. The checkpoint
goes to the store (beside the records) and to an append-only file
(``.personable/audit/checkpoints.jsonl``). Cutting the tail off the table, or
rewriting it, then disagrees with the file.

Records arrive buffered (the request path appends them in memory; the store
process writes them each second, and before any read of the log). The chain
is extended in one store transaction that reads the head and writes after it
(``AuditStore.append_audit``), so writers never fork it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from ..clock import Clock
    from ..ports.audit import AuditStore

log = logging.getLogger("personable")
GENESIS = "0" * 64
PAGE = 10_000
FIELDS = ("seq", "at", "actor", "action", "target", "outcome", "details")


@dataclass(frozen=True)
class Entry:
    """One audit record before it joins the chain."""
    at: datetime
    actor: str
    action: str
    target: str | None = None
    outcome: str = "ok"
    details: dict[str, Any] | None = None


def canonical(seq: int, at: str, actor: str, action: str, target: str | None, outcome: str,
              details: str | None) -> bytes:
    """The chained form of a record; ``target`` and ``details`` are their digests (:meth:`AuditLog.digest`)."""
    return json.dumps([seq, at, actor, action, target, outcome, details], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, default=str).encode()


def link(key: bytes, prev: str, body: bytes) -> str:
    return hmac.new(key, prev.encode() + body, hashlib.sha256).hexdigest()


class AuditLog:
    def __init__(self, store: "AuditStore", clock: "Clock", mac_key: bytes, signing_seed: bytes,
                 checkpoint_file: Path):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.store, self.clock, self.key = store, clock, mac_key
        self._signer = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(signing_seed).digest())
        self.checkpoint_file = checkpoint_file
        self._pending: list[Entry] = []
        self._lock = threading.Lock()

    def digest(self, value: str | None) -> str | None:
        """A field's keyed digest: what the chain holds of a target or details (None stays None)."""
        if value is None:
            return None
        return hmac.new(self.key, b"field:" + value.encode(), hashlib.sha256).hexdigest()

    def _body(self, r: dict[str, Any]) -> bytes:
        """A stored (or exported) record as the chain saw it, redacted or not."""
        details = _details_text(r["details"])
        at = _iso(r["at"]) if isinstance(r["at"], datetime) else str(r["at"])
        lost = _lost(r)
        target = lost["target"] if "target" in lost else self.digest(r["target"])
        return canonical(int(r["seq"]), at, r["actor"], r["action"], target, r["outcome"],
                         lost["details"] if "details" in lost else self.digest(details))

    def _body_v1(self, r: dict[str, Any]) -> bytes:
        """A record written before the chain took digests (schema 12 and older): its target and details
        as they are. Such a record verifies in this form as long as it is not redacted."""
        details = r["details"] if not isinstance(r["details"], str) else json.loads(r["details"])
        at = _iso(r["at"]) if isinstance(r["at"], datetime) else str(r["at"])
        return canonical(int(r["seq"]), at, r["actor"], r["action"], r["target"], r["outcome"], details)

    def _legacy_mark(self, r: dict[str, Any]) -> str:
        """Vouches (keyed, so a forger cannot mark another record) that an erasure redacted this record
        of the old form, whose content can therefore no longer be checked."""
        return hmac.new(self.key, f"legacy-redaction:{int(r['seq'])}:{r['mac']}".encode(), hashlib.sha256).hexdigest()

    def redaction(self, record: dict[str, Any]) -> str:
        """What a record keeps of the target and details an erasure takes out of it (JSON)."""
        record = {**record, "at": record.get("at", record.get("recorded_at"))}    # a row of the table
        lost = _lost(record)
        if not lost and link(self.key, str(record["prev_mac"]), self._body(record)) != record["mac"] and \
                link(self.key, str(record["prev_mac"]), self._body_v1(record)) == record["mac"]:
            lost["legacy"] = self._legacy_mark(record)
        lost.setdefault("target", self.digest(record["target"]))
        lost.setdefault("details", self.digest(_details_text(record["details"])))
        return json.dumps(lost, sort_keys=True)

    def _content_problem(self, r: dict[str, Any]) -> tuple[str | None, str | None]:
        """(problem, warning) about a record's content against its mac."""
        prev = str(r.get("prev_mac"))
        if link(self.key, prev, self._body(r)) == r["mac"]:
            return None, None
        lost = _lost(r)
        if not lost and link(self.key, prev, self._body_v1(r)) == r["mac"]:
            return None, None
        if lost.get("legacy") and hmac.compare_digest(str(lost["legacy"]), self._legacy_mark(r)):
            return None, (f"record {int(r['seq'])} predates keyed digests and was redacted by an erasure: its "
                          "place in the chain is checked, its content no longer can be")
        return f"record {int(r['seq'])}: its content does not match its mac (changed)", None

    # -- writing ---------------------------------------------------------------------------------
    def record(self, actor: str, action: str, target: str | None = None, outcome: str = "ok",
               details: dict[str, Any] | None = None, at: datetime | None = None) -> None:
        entry = Entry(at or self.clock.now(), _text(actor), _text(action), _text(target) if target is not None
                      else None, _text(outcome), _clean(details) if details is not None else None)
        with self._lock:
            self._pending.append(entry)

    def append(self, entries: Iterable[dict[str, Any]]) -> int:
        """Entries recorded elsewhere (the HTTP process), as dicts of :class:`Entry`'s fields. They are
        queued here, and written now if the store takes them; if not, they wait for the next flush (the
        caller must not send them again)."""
        n = 0
        for e in entries:
            at = e["at"] if isinstance(e["at"], datetime) else datetime.fromisoformat(str(e["at"]))
            self.record(str(e["actor"]), str(e["action"]), e.get("target"), str(e.get("outcome", "ok")),
                        e.get("details"), at)
            n += 1
        try:
            self.flush()
        except Exception:
            log.exception("audit records could not be written yet; they wait for the next flush")
        return n

    def flush(self) -> int:
        with self._lock:
            entries, self._pending = self._pending, []
        if not entries:
            return 0
        checkpoint: dict[str, Any] = {}

        def chained(head_seq: int, head_mac: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            rows, prev = [], head_mac
            for n, e in enumerate(entries, start=head_seq + 1):
                row = {"seq": n, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
                       "outcome": e.outcome, "details": _details_text(e.details), "prev_mac": prev}
                row["mac"] = mac = link(self.key, prev, self._body(row))
                rows.append(row)
                prev = mac
            last = head_seq + len(entries)
            checkpoint.update(seq=last, mac=prev, at=self.clock.now().isoformat(),
                              signature=self._sign(last, prev))
            return rows, checkpoint

        try:
            self.store.append_audit(chained)
        except BaseException:
            with self._lock:        # kept for the next try: an audit record is never dropped
                self._pending[:0] = entries
            raise
        self._write_checkpoint(checkpoint)
        return len(entries)

    def _sign(self, seq: int, mac: str) -> str:
        return base64.b64encode(self._signer.sign(f"{seq}:{mac}".encode())).decode()

    def _write_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.checkpoint_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.checkpoint_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps(checkpoint, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def public_key(self) -> str:
        from cryptography.hazmat.primitives import serialization

        raw = self._signer.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    # -- reading -------------------------------------------------------------------------------------
    def query(self, actor: str | None = None, action: str | None = None, target: str | None = None,
              since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
        self.flush()
        return self.store.audit_query(actor, action, target, since, limit)

    def records(self) -> Iterable[dict[str, Any]]:
        after = 0
        while True:
            page = self.store.audit_records(after, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = int(page[-1]["seq"])

    def verify(self, records: "Iterable[dict[str, Any]] | None" = None) -> dict[str, Any]:
        """Walk the chain (the store's, or ``records`` from an export) and check
        every checkpoint's signature and the file of checkpoints against it."""
        from cryptography.exceptions import InvalidSignature

        self.flush()
        problems: list[str] = []
        macs: dict[int, str] = {}
        legacy: list[str] = []
        prev, expected, count = GENESIS, 1, 0
        for r in records if records is not None else self.records():
            seq = int(r["seq"])
            count += 1
            if seq != expected:
                problems.append(f"record {seq}: expected record {expected} here (a record is missing or moved)")
            if r.get("prev_mac") != prev:
                problems.append(f"record {seq}: its link to the record before does not match (removed or reordered)")
            problem, warning = self._content_problem(r)
            problems += [problem] if problem else []
            legacy += [warning] if warning else []
            macs[seq] = str(r["mac"])
            prev, expected = str(r["mac"]), seq + 1
            if len(problems) > 50:
                break
        public = self._signer.public_key()
        stored = {int(c["seq"]): c for c in self.store.audit_checkpoints()}
        filed = {int(c["seq"]): c for c in _read_lines(self.checkpoint_file)}
        for where, checkpoints in (("store", stored), ("file", filed)):
            for seq, c in sorted(checkpoints.items()):
                try:
                    public.verify(base64.b64decode(c["signature"]), f"{seq}:{c['mac']}".encode())
                except (InvalidSignature, ValueError):
                    problems.append(f"checkpoint {seq} ({where}): the signature is not the project's")
                    continue
                if macs.get(seq) != c["mac"]:
                    problems.append(f"checkpoint {seq} ({where}): the log "
                                    f"{'has no record' if seq not in macs else 'has another record'} {seq}")
        for seq in sorted(set(filed) - set(stored)):
            problems.append(f"checkpoint {seq} is in the file but not in the store (the store's log was cut or rewritten)")
        warnings = legacy[:50]
        tail = max(filed, default=0)
        for seq in sorted(set(stored) - set(filed)):
            if seq > tail:   # a crash between the store's commit and the file's append leaves this too
                warnings.append(f"checkpoint {seq} is in the store but not yet in the file")
            else:
                problems.append(f"checkpoint {seq} is in the store but not in the file (the file was edited)")
        last, end = max([*filed, *stored, 0]), max([*macs, 0])
        if end < last:
            problems.append(f"the log ends at record {end}, but a checkpoint vouches for record {last}")
        return {"ok": not problems, "records": count, "checkpoints": len(stored), "checkpoints_in_file": len(filed),
                "last_seq": max(macs) if macs else 0, "problems": problems[:50], "warnings": warnings,
                "public_key": self.public_key()}


def _details_text(details: Any) -> str | None:
    """Details as the store holds them (JSON text), from the store or from an export."""
    return details if details is None or isinstance(details, str) else json.dumps(details, default=str)


def _lost(record: dict[str, Any]) -> dict[str, Any]:
    """The digests a redacted record keeps in place of its target and details ({} when not redacted)."""
    lost = record.get("redacted") or {}
    return dict(json.loads(lost) if isinstance(lost, str) else lost)


def _text(value: Any) -> str:
    """Text a store can hold: a NUL (or another control character) in a path parameter must not make
    the store refuse the batch, which would hold every later record back."""
    return "".join(ch if ch >= " " or ch in "\t" else "\ufffd" for ch in str(value))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _iso(at: datetime) -> str:
    """The time as the chain holds it: UTC, to the microsecond (whatever zone a store reads it back in)."""
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"seq": -1, "mac": "", "signature": ""})
    return out
