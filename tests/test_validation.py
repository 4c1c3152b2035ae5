"""The HTTP validator (Python) and the file validator (SQL) must agree."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personable.config import DEFAULT_JUNK_VALUES
from personable.errors import ErrorList
from personable.events.validate import check_event

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
JUNK = frozenset(DEFAULT_JUNK_VALUES)

def _nested(levels: int) -> dict:
    """A value ``levels`` containers deep (as properties, the event is one more)."""
    node: dict = {}
    for _ in range(levels - 1):
        node = {"x": node}
    return node


CORPUS = [
    {"type": "track", "event": "Signed Up", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z"},
    {"type": "identify", "anonymousId": "a1", "traits": {"email": "x@y.com"}, "timestamp": "2026-02-01"},
    {"type": "page", "userId": 42, "name": "Home", "timestamp": "2026-02-01T10:00:00.123+02:00"},
    {"type": "track", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z"},                       # no event
    {"type": "track", "event": "X", "timestamp": "2026-02-01T10:00:00Z"},                         # no ids
    {"type": "track", "event": "X", "userId": "undefined", "timestamp": "2026-02-01T10:00:00Z"},  # junk id
    {"type": "track", "event": "X", "userId": {"a": 1}, "timestamp": "2026-02-01T10:00:00Z"},     # wrong type
    {"type": "launch", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z"},                      # unknown type
    {"userId": "u1", "timestamp": "2026-02-01T10:00:00Z"},                                        # no type
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "yesterday"},                    # bad time
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-1-1 1:00"},                # not ISO
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2027-02-01T10:00:00Z"},         # future
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-03-01T11:00:00Z",
     "sentAt": "2026-03-01T09:00:00Z"},                                                           # skewed into the future
    {"type": "track", "event": "X", "userId": "u1", "properties": [1], "timestamp": "2026-02-01T10:00:00Z"},
    {"type": "alias", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z"},                       # no previousId
    {"type": "alias", "userId": "u1", "previousId": "null", "timestamp": "2026-02-01T10:00:00Z"},
    {"type": "group", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z"},                       # no groupId
    {"type": "track", "event": "Order Completed", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z",
     "properties": {"revenue": "12", "order_id": 5, "products": [{"price": "x", "quantity": 1.5}, 7]}},
    {"type": "track", "event": "Product Viewed", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z",
     "properties": {"price": 10, "product_id": ["a"]}},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z",
     "context": {"consent": {"categoryPreferences": {"ads": "yes", "email": True}}}},
    {"type": "identify", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z", "traits": {"consent": 5}},
    {"type": "track", "event": 12, "userId": "u1", "timestamp": "2026-02-01T10:00:00Z", "messageId": 3},
    {"type": "track", "event": "X", "userId": "u" * 600, "timestamp": "2026-02-01T10:00:00Z"},
    # hostile testing: times Python's datetime cannot shift into UTC or subtract, and deep nesting
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "0001-01-01T00:30:00+01:00"},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "9999-12-31T23:30:00-01:00"},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "1899-12-31T23:59:59Z"},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "1900-01-01T00:00:00Z"},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z", "sentAt": "9999-01-01T00:00:00Z"},
    {"type": "track", "event": "X", "userId": "u1", "originalTimestamp": "0001-01-01T00:00:00Z",
     "sentAt": "9999-12-31T00:00:00Z"},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z", "properties": _nested(63)},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z", "properties": _nested(64)},
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z",
     "properties": {"a": [[[[[[{"b": "{[{[" * 40}]]]]]]}},                                  # brackets inside strings
    {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z", "properties": _nested(300)},
    {"type": "track", "event": "Order Completed", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z",
     "properties": {"revenue": 1.7e308, "total": -2e15}},
    {"type": "page", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z", "properties": {"revenue": 10**16, "total": "x"}},
    {"type": "track", "event": "Order Completed", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z",
     "properties": {"revenue": 1e15, "total": -1e15}},
]


def python_paths(event) -> set[str]:
    errors = ErrorList()
    check_event(event, "", errors, received_at=NOW, max_future=timedelta(hours=24), junk=JUNK)
    return {e.path for e in errors.items}


def sql_paths(engine, events) -> list[set[str]]:
    lines = [json.dumps(e).encode() for e in events]  # json: orjson stops at 254 levels
    engine.write_lines(lines, "test", "agreement", received_at=NOW)
    rows = engine.sql("SELECT record_no, problems FROM quarantine WHERE origin = 'agreement'").to_pylist()
    by_record = {r["record_no"]: {p["path"] for p in r["problems"]} for r in rows}
    return [by_record.get(i + 1, set()) for i in range(len(events))]


def test_python_and_sql_validators_agree(engine):
    expected = [python_paths(e) for e in CORPUS]
    assert expected[0] == set() and expected[3] == {"event"}  # the corpus has both kinds
    deep = [i for i, e in enumerate(CORPUS) if isinstance(e.get("properties"), dict) and "x" in e["properties"]]
    assert [expected[i] for i in deep[:2]] == [set(), {"$"}]  # 64 levels pass, 65 do not
    got = sql_paths(engine, CORPUS)
    for event, want, have in zip(CORPUS, expected, got):
        assert want == have, f"{event}: python {want} != sql {have}"


def test_specific_messages():
    errors = ErrorList()
    check_event(CORPUS[17], "batch[3]", errors, received_at=NOW, max_future=timedelta(hours=24), junk=JUNK)
    found = {e.path: e.problem for e in errors.items}
    assert found["batch[3].properties.revenue"] == "must be a number, got string"
    assert found["batch[3].properties.products[0].quantity"] == "must be a integer, got number"
    assert found["batch[3].properties.products[1]"] == "must be an object, got number"
    assert "batch[3].properties.order_id" not in found  # ids may be integers


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**62, max_value=2**62) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
event_like = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "nope"]) | json_values,
    "userId": st.text(max_size=8) | json_values, "anonymousId": st.text(max_size=8),
    "event": st.sampled_from(["Order Completed", "Product Viewed", "X"]) | json_values,
    "properties": json_values, "traits": json_values, "context": json_values,
    "timestamp": st.sampled_from(["2026-02-01T10:00:00Z", "2026-02-01", "bad"]) | json_values,
    "previousId": json_values, "groupId": json_values, "sentAt": json_values,
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | event_like)
def test_validator_never_crashes(value):
    errors = ErrorList()
    check_event(value, "", errors, received_at=NOW, max_future=timedelta(hours=24), junk=JUNK)
    for e in errors.items:
        assert e.path and e.problem


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(event_like, min_size=1, max_size=8))
def test_random_events_agree(engine, events):
    engine.store.cursor().execute("DELETE FROM quarantine")  # engine.sql() is read-only
    got = sql_paths(engine, events)
    assert got == [python_paths(e) for e in events]
