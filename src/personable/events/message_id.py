"""The messageId an event without one gets: a hash of its content.

Idempotency rests on messageId (a unique key in the store). An event sent
without one is keyed by what it says, so a retried batch is stored once:
the hash leaves out what a retry changes (``sentAt``, the server's
``receivedAt``) and reads keys in sorted order, so the same event hashes the
same whoever serialized it. The bulk file path applies the same rule to the
line as written (``'auto-' || md5(line)`` in the store): re-importing a file
stores nothing twice.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from .spec import is_blank

PREFIX = "auto-"
VOLATILE = frozenset({"messageId", "sentAt", "receivedAt"})


def content_message_id(event: dict[str, Any]) -> str:
    body = {k: v for k, v in event.items() if k not in VOLATILE}
    return PREFIX + hashlib.md5(orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def has_message_id(event: dict[str, Any]) -> bool:
    """Whether ``event`` came with a usable messageId of its own."""
    mid = event.get("messageId")
    return isinstance(mid, str) and not is_blank(mid)


def ensure_message_id(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with its own messageId, or one from its content."""
    if not has_message_id(event):
        event["messageId"] = content_message_id(event)
    return event
