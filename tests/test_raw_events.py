"""A batch body cut into its events' bytes (the /v1/batch request path)."""

from __future__ import annotations

import json

from personable.events import raw_events
from personable.events.spec import MAX_DEPTH


def test_a_batch_splits_into_its_events_bytes_and_envelope():
    body = b'{"batch": [ {"type":"track"} ,{"a": [1]}], "sentAt": "2026-02-01T10:00:00Z", "writeKey": "k", "x": {}}'
    split = raw_events.split_batch(body)
    assert split.events == [b'{"type":"track"}', b'{"a": [1]}']
    assert split.sent_at == "2026-02-01T10:00:00Z" and split.write_key == "k"


def test_what_is_parsed_whole_instead():
    assert raw_events.split_batch(b'{"batch": [{}], "context": {"ip": "1"}}') is None   # merges into events
    assert raw_events.split_batch(b'{"batch": []}') is None
    assert raw_events.split_batch(b'{"batch": {}}') is None
    assert raw_events.split_batch(b'[{"batch": []}]') is None
    assert raw_events.split_batch(b'{"batch": [1, }') is None
    # nesting far deeper than the limit: parsed whole (msgspec's own limit) or split into an
    # event that is not shallow, so the depth walk judges it either way
    split = raw_events.split_batch(b'{"batch": [' + b"[" * 5000 + b"]" * 5000 + b"]}")
    assert split is None or not raw_events.shallow(split.events[0])


def test_shallow_is_sound_and_spares_the_walk_for_ordinary_events():
    def nested(levels):
        node: dict = {}
        for _ in range(levels - 1):
            node = {"x": node}
        return json.dumps(node).encode()
    assert raw_events.shallow(nested(MAX_DEPTH)) and not raw_events.shallow(nested(MAX_DEPTH + 1))
    # brackets inside strings count too: never shallow by mistake, only judged by the walk
    assert not raw_events.shallow(json.dumps({"s": "[" * 100}).encode())
    assert raw_events.shallow(json.dumps({"type": "track", "context": {"page": {"url": "x"}}}).encode())


def test_log_lines_are_one_line():
    pretty = json.dumps({"type": "track", "properties": {"a": [1, 2]}}, indent=2).encode()
    line = raw_events.log_line(b"  " + pretty + b"\n")
    assert b"\n" not in line and json.loads(line) == json.loads(pretty)
