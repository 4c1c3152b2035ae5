"""Raw event lines to typed records, in Python: the write path's parse step
for stores that do not compile the spec into their own engine.

Each line becomes one record with the columns the write path reads (the
``_parsed`` table of ``adapters/sql/write_batch.py``): ids, type, times with
clock skew corrected, the JSON objects, consent maps, derived device and
channel, revenue and currency, the configured identifier traits, and the
line's problems from :func:`.validate.check_event`. It is the same rule set
as the DuckDB store's bulk SQL (``adapters/duckdb/parse_sql.py``), and a
test holds the two to the same records.
"""

from __future__ import annotations

import hashlib
import math
from itertools import repeat
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Iterable

from ..privacy.minimize import minimizer
from .devices import device_of

import orjson

from ..errors import ErrorList
from .message_id import PREFIX
from .spec import CONSENT_FIELDS, MAX_ID_LENGTH, NUMBER_RANGE_PROBLEM, WHITESPACE, is_blank
from .validate import check_event, in_time_range, is_junk, parse_time

COLUMNS = ("seq", "line", "received_at", "source", "origin", "message_id", "type", "event", "name", "user_id",
           "anonymous_id", "previous_id", "group_id", "timestamp", "original_timestamp", "sent_at", "context",
           "properties", "traits", "consent_context", "consent_traits", "device", "channel", "revenue", "currency")


@dataclass(frozen=True)
class ParseContext:
    received_at: datetime
    source: str
    origin: str
    require_timestamp: bool
    junk: frozenset[str]
    max_future: timedelta
    identifier_traits: tuple[tuple[str, str], ...]
    validate: bool = True
    minimize: str = ""
    """privacy.minimize as JSON (privacy/minimize.py): applied to each line before it is parsed."""


class _OutOfRange(ValueError):
    pass


def _finite(text: str) -> float | int:
    value = float(text)
    if math.isinf(value):
        raise _OutOfRange(text)
    return int(text) if text.lstrip("-").isdigit() else value


def _loads(line: str) -> tuple[bool | None, Any]:
    """(True, the value) for JSON; (False, None) for what is not JSON; (None,
    None) for JSON holding a number beyond a double's range (NUMBER_RANGE_PROBLEM)."""
    try:
        return True, orjson.loads(line)
    except orjson.JSONDecodeError:
        import json

        try:  # orjson refuses some JSON that Python's parser reads: read it, but no number beyond a double
            return True, json.loads(line, parse_float=_finite, parse_int=_finite)
        except _OutOfRange:
            return None, None
        except (ValueError, RecursionError):
            return False, None


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch (what ``json_merge_patch`` does in SQL)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _id(value: Any, junk: frozenset[str] | None = None) -> str | None:
    """An id's text when it is a usable id (a string or an integer, not too long, not junk)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    if len(text) > MAX_ID_LENGTH or (junk is not None and is_junk(value, junk)):
        return None
    return text


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    parsed = parse_time(value)
    return parsed if parsed is not None and in_time_range(parsed) else None


def _at(obj: Any, *parts: str) -> Any:
    for part in parts:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _device(context: Any) -> str | None:
    kind = _str(_at(context, "device", "type"))
    if kind is not None:
        return kind.lower()
    agent = _str(_at(context, "userAgent"))
    if agent is None:
        return None
    return device_of(agent)


def parse_line(seq: int, line: str, ctx: ParseContext) -> dict[str, Any]:
    """One line as a record; ``problems`` lists what makes it invalid (empty: valid)."""
    ok, event = _loads(line)
    errors = ErrorList()
    if ok is None:
        errors.add("$", NUMBER_RANGE_PROBLEM)
    elif not ok:
        errors.add("$", "is not valid JSON")
    elif ctx.validate:
        check_event(event, "", errors, received_at=ctx.received_at, max_future=ctx.max_future, junk=ctx.junk)
    e = event if isinstance(event, dict) else {}
    etype = _str(e.get("type"))
    given = _time(e.get("timestamp"))
    original = _time(e.get("originalTimestamp"))
    sent = _time(e.get("sentAt"))
    ts = given or original
    corrected = (ctx.received_at if ts is None else
                 ctx.received_at - (sent - ts) if sent is not None else ts)
    if ctx.validate and ok and isinstance(event, dict) and not errors and ctx.require_timestamp and ts is None:
        errors.add("timestamp", "is required for file imports")
    context = e.get("context") if isinstance(e.get("context"), dict) else None
    properties = e.get("properties") if isinstance(e.get("properties"), dict) else None
    traits_raw = e.get("traits")
    traits = traits_raw
    if etype == "identify" and isinstance(_at(context, "traits"), dict):
        # Identify traits are traits merged over context.traits (traits win):
        # RudderStack's SDKs send identify traits in context.traits only.
        traits = merge_patch(context["traits"] if context else {}, traits_raw if isinstance(traits_raw, dict) else {})
    consent_context = _at(e, *CONSENT_FIELDS[0])
    consent_traits = _at(e, *CONSENT_FIELDS[1])
    mid = _str(e.get("messageId"))
    channel = next((c.lower() for c in (_str(_at(context, "campaign", "medium")), _str(_at(context, "channel")),
                                         _str(e.get("channel"))) if c is not None), None)
    revenue = _number(_at(properties, "revenue"))
    if revenue is None:
        revenue = _number(_at(properties, "total"))
    currency = _str(_at(properties, "currency"))
    record: dict[str, Any] = {
        "seq": seq, "line": line, "received_at": ctx.received_at, "source": ctx.source, "origin": ctx.origin,
        "message_id": mid if mid is not None and not is_blank(mid) else PREFIX + hashlib.md5(line.encode()).hexdigest(),
        "type": etype, "event": _str(e.get("event")), "name": _str(e.get("name")),
        "user_id": _id(e.get("userId"), ctx.junk), "anonymous_id": _id(e.get("anonymousId"), ctx.junk),
        "previous_id": _id(e.get("previousId"), ctx.junk), "group_id": _id(e.get("groupId")),
        "timestamp": corrected, "original_timestamp": original, "sent_at": sent,
        "context": _dumps(context), "properties": _dumps(properties),
        "traits": _dumps(traits) if isinstance(traits, dict) else None,
        "consent_context": _dumps(consent_context) if isinstance(consent_context, dict) else None,
        "consent_traits": _dumps(consent_traits) if isinstance(consent_traits, dict) and etype == "identify" else None,
        "device": _device(context), "channel": channel, "revenue": revenue,
        "currency": currency.upper() if currency is not None else None,
    }
    for i, (trait, _kind) in enumerate(ctx.identifier_traits):
        own = _id(_at(traits_raw, trait)) if etype == "identify" else None
        record[f"ident_{i}"] = own if own is not None else _id(_at(context, "traits", trait))
    record["problems"] = [{"path": p.path or "$", "problem": p.problem} for p in errors.items]
    return record


NUL_PROBLEM = "contains a NUL character (\\u0000), which text columns cannot hold"


def parse_lines(lines: Iterable[tuple[int, str | None]], ctx: ParseContext,
                own: Iterable[tuple[str | None, datetime | None]] | None = None) -> list[dict[str, Any]]:
    """Records of the non-blank lines, keyed by their ``seq``. ``own``: per
    line, the source and receive time it carries (lines replayed from the
    event log), where they differ from the batch's."""
    out = []
    cut = minimizer(ctx.minimize) if ctx.minimize else None
    for (seq, line), (source, received) in zip(lines, own if own is not None else repeat((None, None))):
        if line is None or not line.strip(WHITESPACE):
            continue
        line_ctx = ctx if source is None and received is None else replace(
            ctx, source=source or ctx.source, received_at=received or ctx.received_at)
        if cut is not None:
            line = cut.line(line, line_ctx.source) or line
        if "\x00" in line or "\\u0000" in line:
            out.append(_refused(seq, line, line_ctx))
        else:
            out.append(parse_line(seq, line, line_ctx))
    return out


def _refused(seq: int, line: str, ctx: ParseContext) -> dict[str, Any]:
    """A record kept only for the quarantine: NUL cannot be stored in a text
    column (PostgreSQL refuses it), so the raw line keeps a replacement mark."""
    record: dict[str, Any] = {c: None for c in COLUMNS}
    record.update(seq=seq, line=line.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd"),
                  received_at=ctx.received_at, source=ctx.source, origin=ctx.origin,
                  message_id=PREFIX + hashlib.md5(line.encode()).hexdigest(), timestamp=ctx.received_at,
                  problems=[{"path": "$", "problem": NUL_PROBLEM}])
    for i in range(len(ctx.identifier_traits)):
        record[f"ident_{i}"] = None
    return record
