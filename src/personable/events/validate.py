"""Validation of single events on the request path (HTTP, Python API).

Files are validated in bulk by the store's SQL; both follow :mod:`.spec`, and a
test checks they agree on a corpus of good and bad events.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import ErrorList
from .spec import (
    ECOMMERCE_EVENTS, EVENT_TYPES, ID_FIELDS, MAX_ID_LENGTH, OBJECT_FIELDS,
    PRODUCT_FIELDS, REQUIRED_BY_TYPE, STRING_FIELDS, TIME_FIELDS, ISO_8601, CONSENT_FIELDS, WHITESPACE,
    AMOUNT_FIELDS, AMOUNT_PROBLEM, MAX_AMOUNT, DEPTH_PROBLEM, EARLIEST_TIME, LATEST_TIME, MAX_DEPTH, TIME_RANGE_PROBLEM,
)

_EARLIEST = datetime.fromisoformat(EARLIEST_TIME)
_LATEST = datetime.fromisoformat(LATEST_TIME)


def parse_time(value: str) -> datetime | None:
    """ISO 8601 to an aware UTC datetime (naive times are taken as UTC).

    The accepted shapes are exactly ISO_8601 (shared with the SQL validator) so a
    value the HTTP path accepts is never quarantined by the file path, or back.
    """
    if not ISO_8601.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    if parsed.tzinfo is timezone.utc:  # "Z", what nearly every client sends
        return parsed
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:30+01:00 is before year 1 in UTC
        return parsed.min.replace(tzinfo=timezone.utc)


def in_time_range(value: datetime) -> bool:
    return _EARLIEST <= value < _LATEST


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` containers deep. Recursive,
    but never more than ``limit`` calls deep, so a hostile value cannot blow
    Python's recursion limit; 3x faster than an explicit stack (it was a
    seventh of /v1/batch's handler time)."""
    if limit <= 0:
        return isinstance(value, (dict, list))
    children = value.values() if type(value) is dict else value if type(value) is list else ()
    for child in children:
        kind = type(child)
        if (kind is dict or kind is list) and deeper_than(child, limit - 1):
            return True
    return False


_CLIP_DEPTH = 100


def _clip(value: Any, depth: int = 0) -> Any:
    """``value`` with containers below _CLIP_DEPTH levels replaced by a marker."""
    if not isinstance(value, (dict, list)):
        return value
    if depth >= _CLIP_DEPTH:
        return "<nested too deep; cut here>"
    if isinstance(value, dict):
        return {k: _clip(v, depth + 1) for k, v in value.items()}
    return [_clip(v, depth + 1) for v in value]


def raw_json(event: Any) -> str:
    """A rejected event as JSON text for the quarantine, whatever it holds: an
    event too deep for orjson (254 levels) is kept down to _CLIP_DEPTH levels."""
    import orjson

    try:
        return orjson.dumps(event, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(_clip(event), default=str).decode()


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches(value: Any, kind: str) -> bool:
    if value is None:
        return True  # absent and null are both "not given"
    if kind == "string":
        return isinstance(value, str)
    if kind == "id":
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "products":
        return isinstance(value, list)
    return True


def is_junk(value: Any, junk: frozenset[str]) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip(WHITESPACE).lower() in junk


def check_event(
    event: Any,
    path: str,
    errors: ErrorList,
    *,
    received_at: datetime,
    max_future: timedelta,
    junk: frozenset[str],
    shallow: bool = False,
) -> None:
    """Add every problem of ``event`` to ``errors``, with field paths under ``path``.
    ``shallow``: the caller knows the event nests no deeper than MAX_DEPTH
    (:func:`.raw_events.shallow`), so the walk that checks it is skipped."""
    p = f"{path}." if path else ""
    if not isinstance(event, dict):
        errors.add(path or "$", f"must be a JSON object, got {_type_name(event)}")
        return
    if not shallow and deeper_than(event, MAX_DEPTH):
        errors.add(path or "$", DEPTH_PROBLEM)
        return
    etype = event.get("type")
    if etype is None:
        errors.add(f"{p}type", "is required")
        return
    if etype not in EVENT_TYPES:
        errors.add(f"{p}type", f"unknown type {str(etype)[:40]!r}; expected one of {', '.join(EVENT_TYPES)}")
        return
    get = event.get  # the loops below read ~20 fields of every event the server receives
    for name in OBJECT_FIELDS:
        value = get(name)
        if value is not None and not isinstance(value, dict):
            errors.add(f"{p}{name}", f"must be an object, got {_type_name(value)}")
    for name in STRING_FIELDS:
        value = get(name)
        if value is not None and not isinstance(value, str):
            errors.add(f"{p}{name}", f"must be a string, got {_type_name(value)}")
    for parts in CONSENT_FIELDS:
        node: Any = event
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        where = p + ".".join(parts)
        if not isinstance(node, dict):
            errors.add(where, f"must be an object, got {_type_name(node)}")
            continue
        for purpose, granted in node.items():
            if not isinstance(granted, bool):
                errors.add(f"{where}.{purpose}", f"must be a boolean, got {_type_name(granted)}")
    usable_ids = 0
    for name in ID_FIELDS:
        value = get(name)
        if value is None:
            continue
        if not isinstance(value, (str, int)) or type(value) is bool:
            errors.add(f"{p}{name}", f"must be a string, got {_type_name(value)}")
            continue
        text = value if type(value) is str else str(value)
        if len(text) > MAX_ID_LENGTH:
            errors.add(f"{p}{name}", f"is longer than {MAX_ID_LENGTH} characters")
        elif name in _USER_IDS and text.strip(WHITESPACE).lower() not in junk:
            usable_ids += 1
    if usable_ids == 0 and not any(
        e.path in (f"{p}userId", f"{p}anonymousId") for e in errors.items
    ):
        given = [f"{k}={event[k]!r}" for k in ("userId", "anonymousId") if get(k) is not None]
        why = f" (ignored junk value {', '.join(given)})" if given else ""
        errors.add(f"{p}userId", f"userId or anonymousId is required{why}")
    required = REQUIRED_BY_TYPE.get(etype)
    if required is not None:
        for name in required:
            value = get(name)
            if value is None or (isinstance(value, str) and not value.strip(WHITESPACE)):
                errors.add(f"{p}{name}", f"is required for {etype} events")
        if etype == "alias" and is_junk(get("previousId"), junk):
            errors.add(f"{p}previousId", f"junk value {get('previousId')!r} cannot be aliased")
    ts = sent = None
    for name in TIME_FIELDS:
        value = get(name)
        if value is None:
            continue
        parsed = parse_time(value) if isinstance(value, str) else None
        if parsed is None:
            errors.add(f"{p}{name}", f"must be an ISO 8601 date-time, got {str(value)[:40]!r}")
        elif not _EARLIEST <= parsed < _LATEST:
            errors.add(f"{p}{name}", f"{TIME_RANGE_PROBLEM}, got {str(value)[:40]!r}")
        elif name == "sentAt":
            sent = parsed
        elif ts is None:  # timestamp, else originalTimestamp (TIME_FIELDS lists timestamp first)
            ts = parsed
    if ts is not None:
        corrected = received_at - (sent - ts) if sent is not None else ts
        if corrected - received_at > max_future:
            hours = (corrected - received_at).total_seconds() / 3600
            errors.add(f"{p}timestamp", f"is {hours:.1f} hours in the future (limit {max_future.total_seconds() / 3600:g} h)")
    props = get("properties")
    if isinstance(props, dict) and props:
        for key in AMOUNT_FIELDS:
            amount = props.get(key)
            if (isinstance(amount, (int, float)) and not isinstance(amount, bool)
                    and not (math.isfinite(amount) and abs(amount) <= MAX_AMOUNT)):
                errors.add(f"{p}properties.{key}", AMOUNT_PROBLEM)
        called = get("event")
        if etype == "track" and isinstance(called, str):
            spec = ECOMMERCE_EVENTS.get(called)
            if spec:
                _check_typed(props, spec, f"{p}properties", errors)


_USER_IDS = frozenset({"userId", "anonymousId"})


def _check_typed(props: dict[str, Any], spec: dict[str, str], path: str, errors: ErrorList) -> None:
    for key, kind in spec.items():
        if key not in props:
            continue
        value = props[key]
        if not _matches(value, kind):
            errors.add(f"{path}.{key}", f"must be {'an array' if kind == 'products' else 'a ' + kind}, got {_type_name(value)}")
        elif kind == "products" and value is not None:
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    errors.add(f"{path}.{key}[{i}]", f"must be an object, got {_type_name(item)}")
                    continue
                for pkey, pkind in PRODUCT_FIELDS.items():
                    if pkey in item and not _matches(item[pkey], pkind):
                        errors.add(f"{path}.{key}[{i}].{pkey}", f"must be a {pkind}, got {_type_name(item[pkey])}")
