"""Collection (/v1/track, …, /v1/batch): a body to acknowledged events.

A batch body is cut into its events' bytes (:mod:`..events.raw_events`);
each is parsed and judged by :func:`..events.validate.check_event` on its
own, and a valid event that needed nothing added is stored as those bytes.
Bodies that cannot be cut (not a batch object, an envelope context) and
single-event bodies are parsed whole. Either way, valid events end in the same
group commit and invalid ones in the quarantine and the answer's ``rejected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..engine import Accepted, Engine, http_quarantine_row
from ..errors import ErrorList, Problem, ValidationFailed
from ..events import raw_events
from ..events.message_id import ensure_message_id, has_message_id
from ..events.validate import check_event, raw_json
from ..privacy.minimize import Minimizer
from .auth import Authenticator
from .body import parse_json, read_body, write_key_from
from .collector import Collector
from .host import HostedEngine


@dataclass
class _Verdicts:
    good: list[Accepted]
    rejected: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]


class Collection:
    def __init__(self, engine: Engine | HostedEngine, collector: Collector, auth: "Authenticator"):
        cfg = engine.config
        self.engine, self.collector = engine, collector
        self.max_body_bytes = cfg.server.max_body_bytes
        self.auth = auth
        self.max_future = timedelta(hours=cfg.max_future_skew_hours)
        self.junk = cfg.identity.junk_values
        # Fields cut down before the event log keeps anything (privacy.minimize).
        self.minimizer = Minimizer(cfg.privacy.minimize)

    async def collect(self, request: Request, forced_type: str | None) -> dict[str, Any]:
        """Store the body's valid events (acknowledged once durable), quarantine
        and list the others; a 400 when none is valid. ``forced_type`` is the
        single-event route's type, None for /v1/batch."""
        raw = await read_body(request, self.max_body_bytes)
        now = self.engine.clock.now()
        verdicts = self._split(request, raw, now) if forced_type is None else None
        if verdicts is None:
            verdicts = self._whole(request, raw, forced_type, now)
        if verdicts.quarantine:
            await run_in_threadpool(self.engine.store.add_quarantine, verdicts.quarantine)
        if not verdicts.good:
            details = [Problem(d["path"], d["problem"]) for r in verdicts.rejected for d in r["details"]]
            raise ValidationFailed(f"{len(verdicts.rejected)} invalid event(s); nothing was accepted", details)
        await self.collector.submit(verdicts.good)
        result: dict[str, Any] = {"success": True, "accepted": len(verdicts.good)}
        if verdicts.rejected:
            result["rejected"] = verdicts.rejected
        return result

    def _split(self, request: Request, raw: bytes, now: datetime) -> _Verdicts | None:
        """A batch judged event by event from its events' bytes; None when it must be parsed whole."""
        split = raw_events.split_batch(raw)
        if split is None:
            return None
        source = self.auth.collecting_source(write_key_from(request, {"writeKey": split.write_key}))
        envelope = {"sentAt": split.sent_at}
        gpc = _gpc(request)
        verdicts = _Verdicts([], [], [])
        for i, event_raw in enumerate(split.events):
            try:
                event = orjson.loads(event_raw)  # bad UTF-8 and JSON, as the whole parse refuses them
            except orjson.JSONDecodeError:
                return None  # the whole body's parse names the error
            self._judge(event, i, "batch", envelope, source, now, verdicts, event_raw, gpc)
        return verdicts

    def _whole(self, request: Request, raw: bytes, forced_type: str | None, now: datetime) -> _Verdicts:
        payload = parse_json(raw)
        source = self.auth.collecting_source(write_key_from(request, payload))
        gpc = _gpc(request)
        verdicts = _Verdicts([], [], [])
        if forced_type is not None:
            if not isinstance(payload, dict):
                raise ValidationFailed("the body must be a JSON object", [Problem("$", "must be a JSON object")])
            typed = "type" in payload
            payload.setdefault("type", forced_type)
            if payload["type"] != forced_type:
                raise ValidationFailed(f"type {payload['type']!r} sent to /v1/{forced_type}",
                                       [Problem("type", f"must be {forced_type!r} on this endpoint")])
            self._judge(payload, 0, "", {}, source, now, verdicts, raw if typed else None, gpc)
            return verdicts
        if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
            raise ValidationFailed("a batch body is an object with a `batch` array",
                                   [Problem("batch", "is required and must be an array")])
        if not payload["batch"]:
            raise ValidationFailed("the batch is empty", [Problem("batch", "must hold at least one event")])
        for i, event in enumerate(payload["batch"]):
            self._judge(event, i, "batch", payload, source, now, verdicts, None, gpc)
        return verdicts

    def _judge(self, event: Any, i: int, prefix: str, envelope: dict[str, Any], source: str, now: datetime,
               verdicts: _Verdicts, event_raw: bytes | None = None, gpc: bool = False) -> None:
        """One parsed event: accepted or rejected and quarantined. An accepted
        event is stored as ``event_raw`` (its bytes as sent) when nothing was
        added to it, else serialized again. ``gpc``: the request carried a
        Global Privacy Control signal, recorded as ``context.consent.gpc``."""
        errors = ErrorList()
        path = f"{prefix}[{i}]" if prefix else ""
        added = False
        if isinstance(event, dict):
            # The envelope's sentAt and context become the event's before it is
            # judged: a bad envelope value is a problem, never stored unchecked.
            if "sentAt" not in event and isinstance(envelope.get("sentAt"), str):
                event["sentAt"] = envelope["sentAt"]
                added = True
            if "context" not in event and isinstance(envelope.get("context"), dict):
                event["context"] = envelope["context"]
                added = True
            if gpc:
                added = _mark_gpc(event) or added
            if self.minimizer and self.minimizer.event(event, source):
                added = True
        check_event(event, path, errors, received_at=now, max_future=self.max_future, junk=self.junk,
                    shallow=event_raw is not None and raw_events.shallow(event_raw))
        if errors:
            problems = [e.as_dict() for e in errors.items]
            verdicts.rejected.append({"index": i, "details": problems})
            verdicts.quarantine.append(http_quarantine_row(
                now, source, i, event.get("messageId") if isinstance(event, dict) else None, problems,
                raw_json(event)))
            return
        if event_raw is not None and not added and has_message_id(event):
            verdicts.good.append((raw_events.log_line(event_raw), source, now))
            return
        # Keyed by its content when it came without a messageId: a retried batch is stored once.
        verdicts.good.append((orjson.dumps(ensure_message_id(event)), source, now))



def _gpc(request: Request) -> bool:
    """The browser's Global Privacy Control signal (``Sec-GPC: 1``): no sale or share."""
    return request.headers.get("sec-gpc", "").strip() == "1"


def _mark_gpc(event: dict[str, Any]) -> bool:
    """Record the signal in the event (``context.consent.gpc``), where the write
    path reads it (privacy.gpc_denies); False when the event's context is not
    an object (validation refuses it)."""
    context = event.setdefault("context", {})
    if not isinstance(context, dict):
        return False
    consent = context.get("consent")
    if consent is None:
        consent = context["consent"] = {}
    if not isinstance(consent, dict):
        return False
    if consent.get("gpc") is True:
        return False
    consent["gpc"] = True   # an envelope's context is shared by the batch's events: all came with the signal
    return True
