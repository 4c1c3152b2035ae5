"""SQL that parses and validates raw event lines in bulk, generated from
:mod:`personable.events.spec` so it judges events exactly like the Python
validator of the HTTP path (a test holds both to the same verdicts).

Input: a table (or view) ``_stg(seq, line, received_at, source, origin, require_ts)``.
Output: ``_parsed`` with typed columns and ``problems`` (a list of
``{path, problem}``; empty means valid).

Speed comes from parsing each line as few times as possible: one call gives the
JSON type of every field we read (``json_type(line, [paths])``), one gives their
text (``json_extract_string``), one the objects we keep as JSON. Every check
after that compares plain strings; calling ``json_type`` per field instead
re-parses the value each time and costs about three times as much.
"""

from __future__ import annotations

from ...events.devices import AGENT_CHARS, MOBILE, TABLET
from ...events.spec import (
    CONSENT_FIELDS, ECOMMERCE_EVENTS, EVENT_TYPES, ID_FIELDS, ISO_8601_PATTERN, MAX_ID_LENGTH,
    OBJECT_FIELDS, PRODUCT_FIELDS, REQUIRED_BY_TYPE, STRING_FIELDS, TIME_FIELDS, WHITESPACE,
    AMOUNT_FIELDS, AMOUNT_PROBLEM, MAX_AMOUNT, DEPTH_PROBLEM, EARLIEST_TIME, LATEST_TIME, MAX_DEPTH, TIME_RANGE_PROBLEM,
    NUMBER_RANGE_PROBLEM,
)

_SNAKE = {
    "messageId": "message_id", "userId": "user_id", "anonymousId": "anonymous_id",
    "previousId": "previous_id", "groupId": "group_id", "sentAt": "sent_at",
    "originalTimestamp": "original_timestamp",
}
ALLOWED = {
    "string": "('VARCHAR')",
    "id": "('VARCHAR','BIGINT','UBIGINT')",
    "number": "('BIGINT','UBIGINT','DOUBLE','HUGEINT')",
    "integer": "('BIGINT','UBIGINT','HUGEINT')",
    "products": "('ARRAY')",
    "object": "('OBJECT')",
}
# Values kept as JSON (stored, or looked into further).
JSON_VALUES = (("context", ("context",)), ("properties", ("properties",)), ("traits", ("traits",)),
               ("consent_0", CONSENT_FIELDS[0]), ("consent_1", CONSENT_FIELDS[1]))


def _allowed_types(kind: str) -> list[str]:
    """The JSON type names ``ALLOWED`` lists for a kind, as a list."""
    return ALLOWED[kind].strip("()").replace("'", "").split(",")


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_path(*parts: str) -> str:
    return "$" + "".join('."' + p.replace('"', '\\"') + '"' for p in parts)


def _name(field: str) -> str:
    return _SNAKE.get(field, field)


def _t(name: str) -> str:
    """The column holding a field's JSON type (NULL when absent)."""
    return f"t_{name}"


def _s(name: str) -> str:
    """The column holding a field's text."""
    return f"s_{name}"


def _tn(type_sql: str) -> str:
    """Our word for a JSON type (matches the Python validator's words)."""
    return (f"(CASE {type_sql} WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' "
            f"WHEN 'ARRAY' THEN 'array' WHEN 'OBJECT' THEN 'object' WHEN 'NULL' THEN 'null' ELSE 'number' END)")


def _present(type_sql: str) -> str:
    return f"(coalesce({type_sql}, 'NULL') <> 'NULL')"


# Blank lines and the start of an object, as regular expressions: trim() copies
# every line (0.6 s per 250k full-context lines), a regex stops at the first
# character that decides.
_WS_CLASS = "[" + "".join(f"\\x{ord(c):02x}" for c in WHITESPACE) + "]"
_BLANK = _WS_CLASS + "*"
_OBJECT_START = "^" + _WS_CLASS + "*\\{"

_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_NOT_BRACKET = r"[^\[\]{}]"
_INNER_PAIR = r"\[\]|\{\}"


def _too_deep(line: str) -> str:
    """Whether a JSON line nests deeper than MAX_DEPTH, exactly as the Python
    validator counts: drop string literals, keep the brackets, then peel the
    innermost pairs MAX_DEPTH times; anything left was deeper. Lines with at most
    MAX_DEPTH opening brackets (nearly all) skip the peeling."""
    peeled = f"regexp_replace(regexp_replace({line}, {q(_JSON_STRING)}, '', 'g'), {q(_NOT_BRACKET)}, '', 'g')"
    for _ in range(MAX_DEPTH):
        peeled = f"regexp_replace({peeled}, {q(_INNER_PAIR)}, '', 'g')"
    openers = f"(length({line}) - length(replace(replace({line}, '{{', ''), '[', '')))"
    return f"(CASE WHEN {openers} > {MAX_DEPTH} THEN {peeled} <> '' ELSE false END)"


# Where a number may overflow a double: a token (after ':', ',' or '[') with a
# positive exponent of 3+ digits or an integer part of 100+ digits; anything
# smaller is below 1e199. Rare, so the exact test below runs on almost no line.
_HUGE_NUMBER_HINT = r"[:,\[]\s*-?([0-9]{100}|[0-9]+(\.[0-9]+)?[eE]\+?[0-9]{3})"
_NUMBER = r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"


def _out_of_range(line: str) -> str:
    """Whether a JSON line holds a number beyond a double's range (as the Python
    parser refuses it): with the strings dropped, any number token that casts to
    an infinite double."""
    numbers = f"regexp_extract_all(regexp_replace({line}, {q(_JSON_STRING)}, '', 'g'), {q(_NUMBER)})"
    return (f"(regexp_matches({line}, {q(_HUGE_NUMBER_HINT)}) AND "
            f"coalesce(list_bool_or(list_transform({numbers}, lambda x: isinf(TRY_CAST(x AS DOUBLE)))), false))")


def _problem(path_sql: str, problem_sql: str) -> str:
    return f"{{'path': {path_sql}, 'problem': {problem_sql}}}"


def extraction(identifier_traits: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(column, JSON path) pairs whose type and text are read from each line."""
    fields = ["messageId", "type", "event", "userId", "anonymousId", "previousId", "groupId",
              "name", "timestamp", "sentAt", "originalTimestamp", *OBJECT_FIELDS, "channel"]
    cols = [(_name(f), json_path(f)) for f in fields]
    cols += [(f"consent_{i}", json_path(*parts)) for i, parts in enumerate(CONSENT_FIELDS)]
    cols += [
        ("device_type", json_path("context", "device", "type")),
        ("user_agent", json_path("context", "userAgent")),
        ("campaign_medium", json_path("context", "campaign", "medium")),
        ("context_channel", json_path("context", "channel")),
        ("revenue", json_path("properties", "revenue")),
        ("total", json_path("properties", "total")),
        ("currency", json_path("properties", "currency")),
    ]
    for i, (trait, _kind) in enumerate(identifier_traits):
        cols.append((f"idt_{i}", json_path("traits", trait)))
        cols.append((f"idc_{i}", json_path("context", "traits", trait)))
    return cols


def _ecommerce_keys() -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for spec in ECOMMERCE_EVENTS.values():
        for key, kind in spec.items():
            if (key, kind) not in keys:
                keys.append((key, kind))
    return keys


def _item_path(suffix: str) -> str:
    """SQL for ``properties.products[<0-based index>]<suffix>`` inside a list lambda over (item, i)."""
    return f"{q('properties.products[')} || (i - 1) || {q(']' + suffix)}"


def _consent_checks(i: int, parts: tuple[str, ...]) -> str:
    col, ty, where = f"j_consent_{i}", _t(f"consent_{i}"), ".".join(parts)
    not_object = _problem(q(where), f"'must be an object, got ' || {_tn(ty)}")
    per_key = (
        f"list_transform(list_filter(map_entries(json_transform({col}, '\"MAP(VARCHAR, JSON)\"')), "
        f"lambda e: coalesce(json_type(e.value), 'NULL') <> 'BOOLEAN'), "
        f"lambda e: {_problem(q(where + '.') + ' || e.key', q('must be a boolean, got ') + ' || ' + _tn('json_type(e.value)'))})"
    )
    return (f"(CASE WHEN NOT {_present(ty)} THEN [] "
            f"WHEN {ty} <> 'OBJECT' THEN [{not_object}] ELSE {per_key} END)")


_CODES = {"string": "s", "id": "i", "number": "n", "integer": "g", "products": "p"}


def _by_code(code_sql: str, values: dict[str, str]) -> str:
    branches = " ".join(f"WHEN {q(_CODES[kind])} THEN {q(text)}" for kind, text in values.items())
    return f"(CASE {code_sql} {branches} END)"


def _typed_checks(types_sql: str, codes_sql: str, names: list[str], path_sql: str, word: dict[str, str]) -> str:
    """Problems for each value, given the list of their JSON types, whose type
    does not match its kind.

    ``codes_sql`` is a string with one character per value (``.`` = not checked),
    so one vectorized lambda checks every key of every e-commerce event, instead
    of a CASE per (event, key) pair."""
    code = f"substr({codes_sql}, k, 1)"
    allowed = _by_code(code, {kind: "|" + "|".join(_allowed_types(kind)) + "|"
                              for kind in _CODES})
    names_sql = "[" + ", ".join(q(n) for n in names) + "]"
    return (f"list_filter(list_transform({types_sql}, lambda ty, k: CASE WHEN {code} <> '.' AND {_present('ty')} "
            f"AND NOT contains({allowed}, '|' || ty || '|') THEN "
            f"{_problem(f'{path_sql} || {names_sql}[k]', q('must be ') + ' || ' + _by_code(code, word) + ' || ' + q(', got ') + ' || ' + _tn('ty'))} END), "
            f"lambda x: x IS NOT NULL)")


def _ecommerce_checks() -> tuple[str, str, str]:
    """(types of the typed properties, per-row kind codes, list-of-problems) expressions."""
    keys = _ecommerce_keys()
    paths = ", ".join(q(json_path(k)) for k, _ in keys)
    names = ", ".join(q(e) for e in ECOMMERCE_EVENTS)
    extract = (f"CASE WHEN type = 'track' AND event IN ({names}) AND {_t('properties')} = 'OBJECT' "
               f"THEN json_type(j_properties, [{paths}]) END")
    codes = "CASE event " + " ".join(
        f"WHEN {q(event)} THEN {q(''.join(_CODES[spec[k]] if spec.get(k) == kind else '.' for k, kind in keys))}"
        for event, spec in ECOMMERCE_EVENTS.items()) + " END"
    scalar_word = {kind: ("an array" if kind == "products" else f"a {kind}") for kind in _CODES}
    scalar = _typed_checks("ec", "ec_codes", [k for k, _ in keys], q("properties."), scalar_word)
    product_idx = [i for i, (k, kind) in enumerate(keys, start=1) if kind == "products"][0]
    product_key = keys[product_idx - 1][0]
    field_paths = ", ".join(q(json_path(f)) for f in PRODUCT_FIELDS)
    item_codes = q("".join(_CODES[kind] for kind in PRODUCT_FIELDS.values()))
    item_checks = _typed_checks(f"json_type(item, [{field_paths}])", item_codes, list(PRODUCT_FIELDS),
                                f"{q('properties.products[')} || (i - 1) || {q('].')}",
                                {kind: f"a {kind}" for kind in _CODES})
    products = (
        f"CASE WHEN ec[{product_idx}] = 'ARRAY' THEN flatten(list_transform("
        f"json_extract(j_properties, {q(json_path(product_key) + '[*]')}), lambda item, i: CASE WHEN json_type(item) <> 'OBJECT' THEN "
        f"[{_problem(_item_path(''), q('must be an object, got ') + ' || ' + _tn('json_type(item)'))}] "
        f"ELSE {item_checks} END)) ELSE [] END"
    )
    # Most e-commerce events are valid and carry no products: their list of
    # types, as one string, matches the event's pattern and no lambda runs
    # (one regex against ~15 lambda calls per event: 0.5-0.9 s per 250k lines).
    # Anything else -- a products array, a type the pattern refuses -- takes
    # the checks above, which say what is wrong.
    signature = "concat_ws(',', " + ", ".join(f"coalesce(ec[{k}], 'NULL')" for k in range(1, len(keys) + 1)) + ")"
    patterns = "CASE event " + " ".join(
        f"WHEN {q(event)} THEN regexp_full_match({signature}, {q(_signature_pattern(spec, keys))})"
        for event, spec in ECOMMERCE_EVENTS.items()) + " END"
    problems = (f"CASE WHEN ec IS NULL THEN [] "
                f"WHEN ec[{product_idx}] IS DISTINCT FROM 'ARRAY' AND {patterns} THEN [] "
                f"ELSE list_concat({scalar}, {products}) END")
    return extract, codes, problems


def _signature_pattern(spec: dict[str, str], keys: list[tuple[str, str]]) -> str:
    """A regex over the comma-joined JSON types of ``keys`` that only the
    types ``spec`` allows match (absent and null always pass; keys the event
    does not type, anything)."""
    parts = []
    for key, kind in keys:
        if spec.get(key) == kind:
            parts.append("(" + "|".join([*_allowed_types(kind), "NULL"]) + ")")
        else:
            parts.append("[A-Z]+")
    return ",".join(parts)


def parse_sql(identifier_traits: list[tuple[str, str]], validate: bool = True,
              junk_param: str = "$junk", max_future_param: str = "$max_future_hours", source: str = "_stg") -> str:
    """The parse statement; ``validate=False`` skips the checks for lines the
    Python validator has already passed (planning the checks costs ~0.2 s, which
    matters on the request path, not for a file)."""
    cols = extraction(identifier_traits)
    path_list = ", ".join(q(path) for _, path in cols)
    json_list = ", ".join(q(json_path(*parts)) for _, parts in JSON_VALUES)
    unpack = ",\n    ".join(f"jt[{i}] AS {_t(name)}, js[{i}] AS {_s(name)}" for i, (name, _) in enumerate(cols, start=1))
    unpack_json = ", ".join(f"jo[{i}] AS j_{name}" for i, (name, _) in enumerate(JSON_VALUES, start=1))
    ec_types, ec_codes, ec_problems = _ecommerce_checks()

    def is_string(name: str) -> str:
        return f"({_t(name)} = 'VARCHAR')"

    id_ok = {
        f: f"coalesce({_t(_name(f))} IN {ALLOWED['id']} AND length({_s(_name(f))}) <= {MAX_ID_LENGTH}, false)" for f in ID_FIELDS
    }
    ws = q(WHITESPACE)
    junk = {f: f"coalesce(list_contains({junk_param}, lower(trim({_s(_name(f))}, {ws}))), false)" for f in ID_FIELDS}
    iso = q(ISO_8601_PATTERN)

    in_range = f"BETWEEN TIMESTAMPTZ {q(EARLIEST_TIME)} AND TIMESTAMPTZ {q(LATEST_TIME)} - INTERVAL 1 MICROSECOND"

    def parsed_time(name: str) -> str:
        """A time field as a timestamp, NULL unless an ISO 8601 string. Computed
        once per field (column ``p_<name>``): the checks and the kept value all
        read that column, instead of matching and casting the text again."""
        return (f"CASE WHEN {is_string(name)} AND regexp_full_match({_s(name)}, {iso}) "
                f"THEN try_cast({_s(name)} AS TIMESTAMPTZ) END")

    def timestamp(name: str) -> str:
        """The time if it is valid and in range, else NULL (as the Python validator keeps it)."""
        return f"CASE WHEN p_{name} {in_range} THEN p_{name} END"

    # (condition, problem) pairs: a row's problems are those whose condition holds.
    checks: list[tuple[str, str]] = []
    for f in OBJECT_FIELDS:
        t = _t(_name(f))
        checks.append((f"{_present(t)} AND {t} <> 'OBJECT'", _problem(q(f), q('must be an object, got ') + ' || ' + _tn(t))))
    for f in STRING_FIELDS:
        t = _t(_name(f))
        checks.append((f"{_present(t)} AND {t} <> 'VARCHAR'", _problem(q(f), q('must be a string, got ') + ' || ' + _tn(t))))
    for f in ID_FIELDS:
        t, s = _t(_name(f)), _s(_name(f))
        checks.append((f"{_present(t)} AND {t} NOT IN {ALLOWED['id']}", _problem(q(f), q('must be a string, got ') + ' || ' + _tn(t))))
        checks.append((f"{t} IN {ALLOWED['id']} AND length({s}) > {MAX_ID_LENGTH}",
                       _problem(q(f), q(f'is longer than {MAX_ID_LENGTH} characters'))))
    usable = f"(({id_ok['userId']} AND NOT {junk['userId']}) OR ({id_ok['anonymousId']} AND NOT {junk['anonymousId']}))"
    bad_id_paths = (f"(({_present(_t('user_id'))} AND NOT {id_ok['userId']}) "
                    f"OR ({_present(_t('anonymous_id'))} AND NOT {id_ok['anonymousId']}))")
    checks.append((f"NOT {usable} AND NOT {bad_id_paths}", _problem(q('userId'), q('userId or anonymousId is required'))))
    for etype, required in REQUIRED_BY_TYPE.items():
        for f in required:
            t, s = _t(_name(f)), _s(_name(f))
            checks.append((f"type = {q(etype)} AND (NOT {_present(t)} OR ({t} = 'VARCHAR' AND trim({s}, {ws}) = ''))",
                           _problem(q(f), q(f'is required for {etype} events'))))
    checks.append((f"type = 'alias' AND {_present(_t('previous_id'))} AND {junk['previousId']}",
                   _problem(q('previousId'), q('junk value cannot be aliased'))))
    for f in TIME_FIELDS:
        t = _t(_name(f))
        checks.append((f"{_present(t)} AND p_{_name(f)} IS NULL", _problem(q(f), q('must be an ISO 8601 date-time'))))
        checks.append((f"coalesce(NOT (p_{_name(f)} {in_range}), false)", _problem(q(f), q(TIME_RANGE_PROBLEM))))
    for f in AMOUNT_FIELDS:
        t, s = _t(f), _s(f)
        checks.append((f"{t} IN {ALLOWED['number']} AND NOT coalesce(abs(try_cast({s} AS DOUBLE)) <= {MAX_AMOUNT!r}, false)",
                       _problem(q(f"properties.{f}"), q(AMOUNT_PROBLEM))))
    checks.append((f"ts IS NOT NULL AND corrected_ts - received_at > to_microseconds(CAST({max_future_param} * 3600e6 AS BIGINT))",
                   _problem(q('timestamp'), q('is ') + ' || round(epoch(corrected_ts - received_at) / 3600, 1) || ' + q(' hours in the future'))))
    checks.append(("require_ts AND ts IS NULL", _problem(q('timestamp'), q('is required for file imports'))))
    consent = [_consent_checks(i, parts) for i, parts in enumerate(CONSENT_FIELDS)]
    type_list = ", ".join(q(t) for t in EVENT_TYPES)
    numeric = ALLOWED["number"]
    id_types = ALLOWED["id"]
    template = f"""
CREATE OR REPLACE TEMP TABLE _parsed AS
WITH raw AS (
  SELECT seq, line, received_at, source, origin, require_ts,
         line IS NOT NULL AND json_valid(line) AS valid_json
  FROM {source} WHERE line IS NOT NULL AND NOT regexp_full_match(line, {q(_BLANK)})
), extracted AS (
  SELECT *, valid_json AND regexp_matches(line, {q(_OBJECT_START)}) AS is_object FROM raw
), lists AS (
  SELECT *,
    CASE WHEN is_object THEN json_type(line, [{path_list}]) END AS jt,
    CASE WHEN is_object THEN json_extract_string(line, [{path_list}]) END AS js,
    CASE WHEN is_object THEN json_extract(line, [{json_list}]) END AS jo
  FROM extracted
), fields AS (
  SELECT seq, line, received_at, source, origin, require_ts, valid_json, is_object,
    {unpack},
    {unpack_json}
  FROM lists
), times AS (
  SELECT *, {", ".join(f"{parsed_time(_name(f))} AS p_{_name(f)}" for f in TIME_FIELDS)}
  FROM fields
), typed AS (
  SELECT *,
    CASE WHEN {is_string('type')} THEN {_s('type')} END AS type,
    CASE WHEN {is_string('event')} THEN {_s('event')} END AS event,
    {timestamp('timestamp')} AS ts_given,
    {timestamp('original_timestamp')} AS ts_original,
    {timestamp('sent_at')} AS sent_at
  FROM times
), corrected AS (
  SELECT *, coalesce(ts_given, ts_original) AS ts,
    CASE WHEN coalesce(ts_given, ts_original) IS NULL THEN received_at
         WHEN sent_at IS NOT NULL THEN received_at - (sent_at - coalesce(ts_given, ts_original))
         ELSE coalesce(ts_given, ts_original) END AS corrected_ts,
    {ec_types} AS ec
  FROM typed
), coded AS (
  SELECT *, CASE WHEN ec IS NOT NULL THEN {ec_codes} END AS ec_codes FROM corrected
)
SELECT seq, line, received_at, source, origin,
  CASE WHEN {is_string('message_id')} AND trim({_s('message_id')}, {ws}) <> '' THEN {_s('message_id')}
       ELSE 'auto-' || md5(line) END AS message_id,
  type, event,
  CASE WHEN {is_string('name')} THEN {_s('name')} END AS name,
  CASE WHEN {id_ok['userId']} AND NOT {junk['userId']} THEN {_s('user_id')} END AS user_id,
  CASE WHEN {id_ok['anonymousId']} AND NOT {junk['anonymousId']} THEN {_s('anonymous_id')} END AS anonymous_id,
  CASE WHEN {id_ok['previousId']} AND NOT {junk['previousId']} THEN {_s('previous_id')} END AS previous_id,
  CASE WHEN {id_ok['groupId']} THEN {_s('group_id')} END AS group_id,
  corrected_ts AS timestamp, ts_original AS original_timestamp, sent_at,
  j_context AS context, j_properties AS properties,
  -- Identify traits are traits merged over context.traits (traits win): RudderStack's
  -- SDKs send identify traits in context.traits only.
  CASE WHEN type = 'identify' AND {_t('context')} = 'OBJECT' AND json_type(j_context, '$.traits') = 'OBJECT'
       THEN json_merge_patch(json_extract(j_context, '$.traits'),
                             CASE WHEN {_t('traits')} = 'OBJECT' THEN j_traits ELSE '{{}}' END)
       ELSE j_traits END AS traits,
  CASE WHEN {_t('consent_0')} = 'OBJECT' THEN j_consent_0 END AS consent_context,
  CASE WHEN {_t('consent_1')} = 'OBJECT' AND type = 'identify' THEN j_consent_1 END AS consent_traits,
  coalesce(CASE WHEN {is_string('device_type')} THEN lower({_s('device_type')}) END,
    CASE WHEN {is_string('user_agent')} THEN
      CASE WHEN regexp_matches(left({_s('user_agent')}, {AGENT_CHARS}), '{TABLET}', 'i') THEN 'tablet'
           WHEN regexp_matches(left({_s('user_agent')}, {AGENT_CHARS}), '{MOBILE}', 'i') THEN 'mobile'
           ELSE 'desktop' END END) AS device,
  coalesce(CASE WHEN {is_string('campaign_medium')} THEN lower({_s('campaign_medium')}) END,
           CASE WHEN {is_string('context_channel')} THEN lower({_s('context_channel')}) END,
           CASE WHEN {is_string('channel')} THEN lower({_s('channel')}) END) AS channel,
  CASE WHEN {_t('revenue')} IN {numeric} THEN {_s('revenue')}::DOUBLE
       WHEN {_t('total')} IN {numeric} THEN {_s('total')}::DOUBLE END AS revenue,
  CASE WHEN {is_string('currency')} THEN upper({_s('currency')}) END AS currency,
  {", ".join(f"CASE WHEN {_t(f'idt_{i}')} IN {id_types} AND type = 'identify' THEN {_s(f'idt_{i}')} WHEN {_t(f'idc_{i}')} IN {id_types} THEN {_s(f'idc_{i}')} END AS ident_{i}" for i in range(len(identifier_traits))) or "NULL AS ident_none"},
  {{problems}} AS problems
FROM coded
"""
    if not validate:
        return template.replace("{problems}", "[]::STRUCT(path VARCHAR, problem VARCHAR)[]")
    return template.replace("{problems}", f"""CASE
    WHEN NOT valid_json THEN [{_problem("'$'", "'is not valid JSON'")}]
    WHEN NOT is_object THEN [{_problem("'$'", "'must be a JSON object, got ' || " + _tn("json_type(line)"))}]
    WHEN {_too_deep('line')} THEN [{_problem("'$'", q(DEPTH_PROBLEM))}]
    WHEN {_out_of_range('line')} THEN [{_problem("'$'", q(NUMBER_RANGE_PROBLEM))}]
    WHEN NOT {_present(_t('type'))} THEN [{_problem("'type'", "'is required'")}]
    WHEN type IS NULL OR type NOT IN ({type_list}) THEN [{_problem("'type'", "'unknown type; expected one of ' || " + q(', '.join(EVENT_TYPES)))}]
    ELSE list_concat(
      list_filter([{', '.join(f'CASE WHEN {c} THEN {p} END' for c, p in checks)}], lambda x: x IS NOT NULL),
      {consent[0]}, {consent[1]},
      {ec_problems})
  END""")
