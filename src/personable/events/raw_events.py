"""A batch body cut into its events' bytes, so a valid event is stored as the
client sent it instead of being serialized again.

Parsing a /v1/batch body whole and writing each accepted event back out as
JSON cost ~9 µs per full-context event, a third of the request path. msgspec
finds where each event's JSON starts and ends (``Raw``: nothing is built);
each event is then parsed on its own (by orjson, the one parser of the
request path, so what counts as JSON does not change) for the validator, and
its bytes, when nothing was added to it, become its event-log line.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from .spec import MAX_DEPTH


class _Batch(Struct):
    batch: list[Raw]
    writeKey: Any = None
    sentAt: Any = None
    context: Raw | UnsetType = UNSET


_batch = msgspec.json.Decoder(_Batch)


class Split(Struct):
    """A batch's events as bytes, with its envelope's write key and sentAt."""

    events: list[bytes]
    write_key: Any
    sent_at: Any


def split_batch(body: bytes) -> Split | None:
    """``body``'s events, or None when it must be parsed whole: not a batch
    object (the whole parse names the problem), an empty batch, or an
    envelope ``context``, which merges into every event."""
    try:
        envelope = _batch.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not envelope.batch or envelope.context is not UNSET:
        return None
    return Split([bytes(raw) for raw in envelope.batch], envelope.writeKey, envelope.sentAt)


def shallow(raw: bytes) -> bool:
    """Whether the JSON in ``raw`` certainly nests no deeper than MAX_DEPTH:
    depth never exceeds the number of opening brackets, which bytes.count
    finds in C. Nearly every event has far fewer, and skips the depth walk."""
    return raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH


def log_line(raw: bytes) -> bytes:
    """An event's bytes as one event-log line: JSON allows newlines only between
    tokens, where a space means the same."""
    line = raw.strip()
    return line.replace(b"\n", b" ") if b"\n" in line else line
