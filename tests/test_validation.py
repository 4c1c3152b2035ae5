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


# Every typed key of every e-commerce event, given each kind of JSON value: the
# SQL validator takes a shortcut for events whose types all fit (one pattern
# over their list of types), so both ways -- and the cases in between (null,
# absent, products arrays good and bad) -- must give the Python verdicts.
_VALUES = ["s", 7, 2**63 + 5, 1.5, True, None, [1], {"a": 1}]


def _ecommerce_corpus() -> list[dict]:
    from personable.events.spec import ECOMMERCE_EVENTS

    base = {"type": "track", "userId": "u1", "timestamp": "2026-02-01T10:00:00Z"}
    corpus = []
    for event, spec in ECOMMERCE_EVENTS.items():
        corpus.append({**base, "event": event, "properties": {}})
        corpus.append({**base, "event": event, "properties": {k: {"string": "x", "id": "i1", "number": 2.5,
                                                                    "integer": 3, "products": [{"price": 1.5}]}[kind]
                                                                for k, kind in spec.items()}})
        for key in spec:
            for value in _VALUES:
                corpus.append({**base, "event": event, "properties": {key: value, "extra": value}})
    corpus += [{**base, "event": "Order Completed", "properties": {"products": products}}
               for products in ([], [{}], [{"price": "x"}], [7], [{"quantity": 1.5, "sku": 9}], "no")]
    return corpus


def test_python_and_sql_validators_agree_on_every_ecommerce_key(engine):
    corpus = _ecommerce_corpus()
    expected = [python_paths(e) for e in corpus]
    assert sum(1 for e in expected if e) > 500 and sum(1 for e in expected if not e) > 200
    assert sql_paths(engine, corpus) == expected


def test_both_validators_word_a_line_that_is_not_an_object_alike(engine):
    values = [[1], "x", 7, 2.5, None, True]
    engine.write_lines([json.dumps(v).encode() for v in values], "test", "not-objects", received_at=NOW)
    rows = engine.sql("SELECT record_no, problems FROM quarantine WHERE origin = 'not-objects' ORDER BY record_no").to_pylist()
    got = [r["problems"][0]["problem"] for r in rows]
    expected = []
    for v in values:
        errors = ErrorList()
        check_event(v, "", errors, received_at=NOW, max_future=timedelta(hours=24), junk=JUNK)
        expected.append(errors.items[0].problem)
    assert got == expected and expected[0] == "must be a JSON object, got array"


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


RICH = [
    {"type": "identify", "userId": 7, "anonymousId": "a7", "messageId": "r1", "timestamp": "2026-02-01T10:00:00Z",
     "sentAt": "2026-02-01T10:00:05Z", "traits": {"email": "A@B.com", "consent": {"ads": True}, "n": None},
     "context": {"traits": {"email": "old@b.com", "phone": "+1 555 0100", "x": 1}, "userAgent": "Mozilla (iPad)",
                 "consent": {"categoryPreferences": {"email": False}}}},
    {"type": "track", "anonymousId": "a8", "event": "Order Completed", "timestamp": "2026-02-01T10:00:00+02:00",
     "properties": {"total": 12.5, "currency": "eur"}, "context": {"device": {"type": "Mobile"}, "channel": "Web",
                                                                    "traits": {"email": "c@d.com"}}},
    {"type": "page", "userId": "u9", "originalTimestamp": "2026-02-01T09:00:00Z", "channel": "Server",
     "context": {"campaign": {"medium": "CPC"}, "userAgent": "Android Mobi"}, "properties": {"revenue": 3}},
    {"type": "screen", "userId": "u9", "name": "Home", "context": {"userAgent": "Desktop thing"}},
    {"type": "alias", "userId": "u10", "previousId": "a7", "timestamp": "2026-02-01T10:00:00Z"},
    {"type": "group", "userId": "u10", "groupId": 55, "timestamp": "2026-02-01T10:00:00Z", "traits": {"plan": "x"}},
]
PARSED_COLUMNS = ("message_id", "type", "event", "name", "user_id", "anonymous_id", "previous_id", "group_id",
                  "timestamp", "original_timestamp", "sent_at", "context", "properties", "traits", "consent_context",
                  "consent_traits", "device", "channel", "revenue", "currency", "ident_0", "ident_1")
JSON_COLUMNS = {"context", "properties", "traits", "consent_context", "consent_traits"}


def test_python_parser_and_sql_parser_give_the_same_records(tmp_path):
    """events/parse.py (stores that parse in Python, e.g. PostgreSQL) and the
    DuckDB store's bulk SQL turn the same lines into the same records."""
    import pyarrow as pa

    from personable.adapters.duckdb import DuckDBStore
    from personable.config import load_config, write_starter
    from personable.events.parse import ParseContext, parse_line
    from personable.ingest.pipeline import settings_from
    from personable.ports import StagedInput

    write_starter(tmp_path, "parse")
    settings = settings_from(load_config(tmp_path))
    assert len(settings.identifier_traits) >= 2
    events = RICH + CORPUS[:23]
    lines = [json.dumps(e) for e in events] + ["{not json", "[1, 2]"]
    store = DuckDBStore(None)
    staged = StagedInput(source="s", origin="o", lines=pa.table({"line": lines}), received_at=NOW)
    with store.batch(staged, settings) as batch:
        cols = ", ".join(PARSED_COLUMNS)
        sql_rows = batch.con.execute(f"SELECT seq, {cols}, problems FROM _parsed ORDER BY seq").fetchall()
    ctx = ParseContext(received_at=NOW, source="s", origin="o", require_timestamp=False, junk=JUNK,
                       max_future=timedelta(hours=settings.max_future_hours),
                       identifier_traits=settings.identifier_traits)
    assert len(sql_rows) == len(lines)
    compared = 0
    for row in sql_rows:
        seq, values, problems = row[0], row[1:-1], row[-1]
        mine = parse_line(seq, lines[seq - 1], ctx)
        if problems:  # an invalid record only needs the same verdict, by field
            assert {p["path"] for p in mine["problems"]} == {p["path"] for p in problems}, lines[seq - 1]
            continue
        assert mine["problems"] == [], lines[seq - 1]
        for name, value in zip(PARSED_COLUMNS, values):
            theirs = mine[name]
            if name in JSON_COLUMNS:
                value, theirs = (None if value is None else json.loads(value)), (None if theirs is None else json.loads(theirs))
            assert theirs == value, f"{name} of {lines[seq - 1]}: python {theirs!r} != sql {value!r}"
        compared += 1
    assert compared >= len(RICH) + 3   # the rich events and the valid ones of the corpus, field by field
    store.close()


def test_both_parsers_skip_the_same_blank_lines(tmp_path):
    """A line of whitespace only (tabs, form feeds, CR) is no record for either
    parser; leading whitespace before an object does not make it invalid. The
    SQL parser once trimmed only spaces, so a tab-only line was quarantined as
    invalid JSON by DuckDB and skipped by the Python parser."""
    import pyarrow as pa

    from personable.adapters.duckdb import DuckDBStore
    from personable.config import load_config, write_starter
    from personable.events.parse import ParseContext, parse_lines
    from personable.ingest.pipeline import settings_from
    from personable.ports import StagedInput

    write_starter(tmp_path, "blank")
    settings = settings_from(load_config(tmp_path))
    event = json.dumps({"type": "track", "event": "Viewed", "userId": "u1", "messageId": "m1"})
    # A messageId of whitespace is no messageId to either (SQL trimmed only spaces).
    blank_id = json.dumps({"type": "track", "event": "Viewed", "userId": "u1", "messageId": "\t\x0c"})
    lines = ["", " ", "\t", "\t \r", "\x0c\x0b", " \t" + event, "  ", blank_id]
    store = DuckDBStore(None)
    staged = StagedInput(source="s", origin="o", lines=pa.table({"line": lines}), received_at=NOW)
    with store.batch(staged, settings) as batch:
        sql_rows = batch.con.execute("SELECT seq, message_id, len(problems) FROM _parsed ORDER BY seq").fetchall()
    store.close()
    ctx = ParseContext(received_at=NOW, source="s", origin="o", require_timestamp=False, junk=JUNK,
                       max_future=timedelta(hours=settings.max_future_hours),
                       identifier_traits=settings.identifier_traits)
    python_rows = [(r["seq"], r["message_id"], len(r["problems"])) for r in parse_lines(enumerate(lines, 1), ctx)]
    assert sql_rows == python_rows
    assert [(seq, mid if seq == 6 else mid.startswith("auto-"), n) for seq, mid, n in sql_rows] == [(6, "m1", 0), (8, True, 0)]


OVERFLOWING = ['{"a":1e999}', '{"a":[1,-2.5E+400]}', '{"a":{"b":' + "9" * 400 + '}}', '{"a":1.8e308}',
               '{"a":' + "1" * 150 + 'e200}']
FINITE = ['{"a":1e308}', '{"a":1.7976931348623157e308}', '{"a":"1e999"}', '{"a":"x:1e999"}', '{"a":0.0001e310}',
          '{"a":1e-999}', '{"a":' + "9" * 120 + '}', '{"a":"\\":1e999"}']


def test_numbers_beyond_a_double_are_refused_alike_by_both_parsers(tmp_path):
    """A number no JSON reader holds (1e999, a 400-digit integer) made the
    profile it reached unreadable: orjson failed on its document, so `profile
    show` printed a traceback and the HTTP read answered 500. Both parsers
    refuse the event; numbers that are merely large, or only look huge inside
    a string, pass."""
    import pyarrow as pa

    from personable.adapters.duckdb import DuckDBStore
    from personable.config import load_config, write_starter
    from personable.events.parse import ParseContext, parse_line
    from personable.events.spec import NUMBER_RANGE_PROBLEM
    from personable.ingest.pipeline import settings_from
    from personable.ports import StagedInput

    write_starter(tmp_path, "range")
    settings = settings_from(load_config(tmp_path))
    base = '{"type":"identify","userId":"u1","messageId":"m%d","timestamp":"2026-02-01T10:00:00Z","traits":%s}'
    lines = [base % (i, value) for i, value in enumerate(OVERFLOWING + FINITE)]
    store = DuckDBStore(None)
    staged = StagedInput(source="s", origin="o", lines=pa.table({"line": lines}), received_at=NOW)
    with store.batch(staged, settings) as batch:
        sql = [r[0] for r in batch.con.execute("SELECT problems FROM _parsed ORDER BY seq").fetchall()]
    store.close()
    ctx = ParseContext(received_at=NOW, source="s", origin="o", require_timestamp=False, junk=JUNK,
                       max_future=timedelta(hours=settings.max_future_hours),
                       identifier_traits=settings.identifier_traits)
    python = [parse_line(i + 1, line, ctx)["problems"] for i, line in enumerate(lines)]
    refused = [{"path": "$", "problem": NUMBER_RANGE_PROBLEM}]
    assert sql[:len(OVERFLOWING)] == [refused] * len(OVERFLOWING)
    assert python[:len(OVERFLOWING)] == [refused] * len(OVERFLOWING)
    assert sql[len(OVERFLOWING):] == [[]] * len(FINITE) and python[len(OVERFLOWING):] == [[]] * len(FINITE)


def test_a_file_with_a_number_beyond_a_double_keeps_its_profiles_readable(engine, tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text(
        '{"type":"identify","userId":"huge","messageId":"h1","timestamp":"2026-02-01T10:00:00Z","traits":{"age":1e999}}\n'
        '{"type":"identify","userId":"huge","messageId":"h2","timestamp":"2026-02-01T10:00:00Z","traits":{"city":"Ghent"}}\n')
    report = engine.ingest(path)
    assert (report.accepted, report.quarantined) == (1, 1)
    assert engine.profile("huge")["traits"] == {"city": "Ghent"}
