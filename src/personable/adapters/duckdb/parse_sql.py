"""SQL that parses and validates raw event lines in bulk, generated from
:mod:`personable.events.spec` so it judges events exactly like the Python
validator of the HTTP path (a test holds both to the same verdicts).

Input: a table ``_stg(seq, line, received_at, source, origin, require_ts)``.
Output: ``_parsed`` with typed columns and ``problems`` (a list of
``{path, problem}``; empty means valid).
"""

from __future__ import annotations

from ...events.spec import (
    CONSENT_FIELDS, ECOMMERCE_EVENTS, EVENT_TYPES, ID_FIELDS, ISO_8601_PATTERN, MAX_ID_LENGTH,
    OBJECT_FIELDS, PRODUCT_FIELDS, REQUIRED_BY_TYPE, STRING_FIELDS, TIME_FIELDS, WHITESPACE,
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


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_path(*parts: str) -> str:
    return "$" + "".join('."' + p.replace('"', '\\"') + '"' for p in parts)


def _col(field: str) -> str:
    return "j_" + _SNAKE.get(field, field)


def _tn(expr: str) -> str:
    """Our word for a JSON value's type (matches the Python validator's words)."""
    return (f"(CASE json_type({expr}) WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' "
            f"WHEN 'ARRAY' THEN 'array' WHEN 'OBJECT' THEN 'object' WHEN 'NULL' THEN 'null' ELSE 'number' END)")


def _present(expr: str) -> str:
    return f"(coalesce(json_type({expr}), 'NULL') <> 'NULL')"


def _problem(path_sql: str, problem_sql: str) -> str:
    return f"{{'path': {path_sql}, 'problem': {problem_sql}}}"


def extraction(identifier_traits: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(column, JSON path) pairs pulled from each line in one parse."""
    fields = ["messageId", "type", "event", "userId", "anonymousId", "previousId", "groupId",
              "name", "timestamp", "sentAt", "originalTimestamp", *OBJECT_FIELDS, "channel"]
    cols = [(_col(f), json_path(f)) for f in fields]
    cols += [(f"j_consent_{i}", json_path(*parts)) for i, parts in enumerate(CONSENT_FIELDS)]
    cols += [
        ("j_device_type", json_path("context", "device", "type")),
        ("j_user_agent", json_path("context", "userAgent")),
        ("j_campaign_medium", json_path("context", "campaign", "medium")),
        ("j_context_channel", json_path("context", "channel")),
        ("j_revenue", json_path("properties", "revenue")),
        ("j_total", json_path("properties", "total")),
        ("j_currency", json_path("properties", "currency")),
    ]
    for i, (trait, _kind) in enumerate(identifier_traits):
        cols.append((f"j_idt_{i}", json_path("traits", trait)))
        cols.append((f"j_idc_{i}", json_path("context", "traits", trait)))
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
    col, where = f"j_consent_{i}", ".".join(parts)
    not_object = _problem(q(where), f"'must be an object, got ' || {_tn(col)}")
    per_key = (
        f"list_transform(list_filter(map_entries(json_transform({col}, '\"MAP(VARCHAR, JSON)\"')), "
        f"lambda e: coalesce(json_type(e.value), 'NULL') <> 'BOOLEAN'), "
        f"lambda e: {_problem(q(where + '.') + ' || e.key', q('must be a boolean, got ') + ' || ' + _tn('e.value'))})"
    )
    return (f"(CASE WHEN NOT {_present(col)} THEN [] "
            f"WHEN json_type({col}) <> 'OBJECT' THEN [{not_object}] ELSE {per_key} END)")


_CODES = {"string": "s", "id": "i", "number": "n", "integer": "g", "products": "p"}


def _by_code(code_sql: str, values: dict[str, str]) -> str:
    branches = " ".join(f"WHEN {q(_CODES[kind])} THEN {q(text)}" for kind, text in values.items())
    return f"(CASE {code_sql} {branches} END)"


def _typed_checks(values_sql: str, codes_sql: str, names: list[str], path_sql: str, word: dict[str, str]) -> str:
    """Problems for each JSON value in a list whose type does not match its kind.

    ``codes_sql`` is a string with one character per value (``.`` = not checked),
    so one vectorized lambda checks every key of every e-commerce event, instead
    of a CASE per (event, key) pair."""
    code = f"substr({codes_sql}, k, 1)"
    allowed = _by_code(code, {kind: "|" + "|".join(ALLOWED[kind].strip("()").replace("'", "").split(",")) + "|"
                              for kind in _CODES})
    names_sql = "[" + ", ".join(q(n) for n in names) + "]"
    return (f"list_filter(list_transform({values_sql}, lambda v, k: CASE WHEN {code} <> '.' AND {_present('v')} "
            f"AND NOT contains({allowed}, '|' || json_type(v) || '|') THEN "
            f"{_problem(f'{path_sql} || {names_sql}[k]', q('must be ') + ' || ' + _by_code(code, word) + ' || ' + q(', got ') + ' || ' + _tn('v'))} END), "
            f"lambda x: x IS NOT NULL)")


def _ecommerce_checks() -> tuple[str, str, str]:
    """(extraction, per-row kind codes, list-of-problems) expressions for typed properties."""
    keys = _ecommerce_keys()
    paths = ", ".join(q(json_path(k)) for k, _ in keys)
    names = ", ".join(q(e) for e in ECOMMERCE_EVENTS)
    extract = f"CASE WHEN type = 'track' AND event IN ({names}) AND json_type(j_properties) = 'OBJECT' THEN json_extract(j_properties, [{paths}]) END"
    codes = "CASE event " + " ".join(
        f"WHEN {q(event)} THEN {q(''.join(_CODES[spec[k]] if spec.get(k) == kind else '.' for k, kind in keys))}"
        for event, spec in ECOMMERCE_EVENTS.items()) + " END"
    scalar_word = {kind: ("an array" if kind == "products" else f"a {kind}") for kind in _CODES}
    scalar = _typed_checks("ec", "ec_codes", [k for k, _ in keys], q("properties."), scalar_word)
    product_idx = [i for i, (k, kind) in enumerate(keys, start=1) if kind == "products"][0]
    field_paths = ", ".join(q(json_path(f)) for f in PRODUCT_FIELDS)
    item_codes = q("".join(_CODES[kind] for kind in PRODUCT_FIELDS.values()))
    item_checks = _typed_checks(f"json_extract(item, [{field_paths}])", item_codes, list(PRODUCT_FIELDS),
                                f"{q('properties.products[')} || (i - 1) || {q('].')}",
                                {kind: f"a {kind}" for kind in _CODES})
    products = (
        f"CASE WHEN json_type(ec[{product_idx}]) = 'ARRAY' THEN flatten(list_transform("
        f"json_extract(ec[{product_idx}], '$[*]'), lambda item, i: CASE WHEN json_type(item) <> 'OBJECT' THEN "
        f"[{_problem(_item_path(''), q('must be an object, got ') + ' || ' + _tn('item'))}] "
        f"ELSE {item_checks} END)) ELSE [] END"
    )
    problems = f"CASE WHEN ec IS NULL THEN [] ELSE list_concat({scalar}, {products}) END"
    return extract, codes, problems


def parse_sql(identifier_traits: list[tuple[str, str]], validate: bool = True,
              junk_param: str = "$junk", max_future_param: str = "$max_future_hours") -> str:
    """The parse statement; ``validate=False`` skips the checks for lines the
    Python validator has already passed (planning the checks costs ~0.2 s, which
    matters on the request path, not for a file)."""
    cols = extraction(identifier_traits)
    extract_list = ", ".join(q(path) for _, path in cols)
    unpack = ",\n    ".join(f"f[{i}] AS {name}" for i, (name, _) in enumerate(cols, start=1))
    ec_extract, ec_codes, ec_problems = _ecommerce_checks()

    def text(col: str) -> str:
        return f"({col} ->> '$')"

    id_ok = {
        f: f"coalesce(json_type({_col(f)}) IN {ALLOWED['id']} AND length({text(_col(f))}) <= {MAX_ID_LENGTH}, false)" for f in ID_FIELDS
    }
    ws = q(WHITESPACE)
    junk = {f: f"coalesce(list_contains({junk_param}, lower(trim({text(_col(f))}, {ws}))), false)" for f in ID_FIELDS}
    checks: list[str] = []
    for f in OBJECT_FIELDS:
        checks.append(f"CASE WHEN {_present(_col(f))} AND json_type({_col(f)}) <> 'OBJECT' THEN {_problem(q(f), q('must be an object, got ') + ' || ' + _tn(_col(f)))} END")
    for f in STRING_FIELDS:
        checks.append(f"CASE WHEN {_present(_col(f))} AND json_type({_col(f)}) <> 'VARCHAR' THEN {_problem(q(f), q('must be a string, got ') + ' || ' + _tn(_col(f)))} END")
    for f in ID_FIELDS:
        c = _col(f)
        checks.append(
            f"CASE WHEN {_present(c)} AND json_type({c}) NOT IN {ALLOWED['id']} THEN {_problem(q(f), q('must be a string, got ') + ' || ' + _tn(c))} "
            f"WHEN {_present(c)} AND length({text(c)}) > {MAX_ID_LENGTH} THEN {_problem(q(f), q(f'is longer than {MAX_ID_LENGTH} characters'))} END"
        )
    usable = f"(({id_ok['userId']} AND NOT {junk['userId']}) OR ({id_ok['anonymousId']} AND NOT {junk['anonymousId']}))"
    bad_id_paths = f"(({_present(_col('userId'))} AND NOT {id_ok['userId']}) OR ({_present(_col('anonymousId'))} AND NOT {id_ok['anonymousId']}))"
    checks.append(f"CASE WHEN NOT {usable} AND NOT {bad_id_paths} THEN {_problem(q('userId'), q('userId or anonymousId is required'))} END")
    for etype, required in REQUIRED_BY_TYPE.items():
        for f in required:
            c = _col(f)
            checks.append(
                f"CASE WHEN type = {q(etype)} AND (NOT {_present(c)} OR (json_type({c}) = 'VARCHAR' AND trim({text(c)}, {ws}) = '')) "
                f"THEN {_problem(q(f), q(f'is required for {etype} events'))} END"
            )
    checks.append(f"CASE WHEN type = 'alias' AND {_present(_col('previousId'))} AND {junk['previousId']} THEN {_problem(q('previousId'), q('junk value cannot be aliased'))} END")
    for f in TIME_FIELDS:
        c = _col(f)
        checks.append(
            f"CASE WHEN {_present(c)} AND NOT (json_type({c}) = 'VARCHAR' AND regexp_full_match({text(c)}, {q(ISO_8601_PATTERN)}) "
            f"AND try_cast({text(c)} AS TIMESTAMPTZ) IS NOT NULL) THEN {_problem(q(f), q('must be an ISO 8601 date-time'))} END"
        )
    checks.append(
        f"CASE WHEN ts IS NOT NULL AND corrected_ts - received_at > to_microseconds(CAST({max_future_param} * 3600e6 AS BIGINT)) "
        f"THEN {_problem(q('timestamp'), q('is ') + ' || round(epoch(corrected_ts - received_at) / 3600, 1) || ' + q(' hours in the future'))} END"
    )
    checks.append(f"CASE WHEN require_ts AND ts IS NULL THEN {_problem(q('timestamp'), q('is required for file imports'))} END")
    consent = [_consent_checks(i, parts) for i, parts in enumerate(CONSENT_FIELDS)]
    type_list = ", ".join(q(t) for t in EVENT_TYPES)
    template = f"""
CREATE OR REPLACE TEMP TABLE _parsed AS
WITH raw AS (
  SELECT seq, line, received_at, source, origin, require_ts,
         line IS NOT NULL AND json_valid(line) AS valid_json
  FROM _stg WHERE line IS NOT NULL AND trim(line) <> ''
), extracted AS (
  SELECT *, CASE WHEN valid_json AND starts_with(ltrim(line), '{{') THEN json_extract(line, [{extract_list}]) END AS f
  FROM raw
), fields AS (
  SELECT seq, line, received_at, source, origin, require_ts, valid_json, f IS NOT NULL AS is_object,
    {unpack}
  FROM extracted
), typed AS (
  SELECT *,
    CASE WHEN json_type(j_type) = 'VARCHAR' THEN j_type ->> '$' END AS type,
    CASE WHEN json_type(j_event) = 'VARCHAR' THEN j_event ->> '$' END AS event,
    CASE WHEN json_type(j_timestamp) = 'VARCHAR' AND regexp_full_match(j_timestamp ->> '$', {q(ISO_8601_PATTERN)}) THEN try_cast(j_timestamp ->> '$' AS TIMESTAMPTZ) END AS ts_given,
    CASE WHEN json_type(j_original_timestamp) = 'VARCHAR' AND regexp_full_match(j_original_timestamp ->> '$', {q(ISO_8601_PATTERN)}) THEN try_cast(j_original_timestamp ->> '$' AS TIMESTAMPTZ) END AS ts_original,
    CASE WHEN json_type(j_sent_at) = 'VARCHAR' AND regexp_full_match(j_sent_at ->> '$', {q(ISO_8601_PATTERN)}) THEN try_cast(j_sent_at ->> '$' AS TIMESTAMPTZ) END AS sent_at
  FROM fields
), corrected AS (
  SELECT *, coalesce(ts_given, ts_original) AS ts,
    CASE WHEN coalesce(ts_given, ts_original) IS NULL THEN received_at
         WHEN sent_at IS NOT NULL THEN received_at - (sent_at - coalesce(ts_given, ts_original))
         ELSE coalesce(ts_given, ts_original) END AS corrected_ts,
    {ec_extract} AS ec
  FROM typed
), coded AS (
  SELECT *, CASE WHEN ec IS NOT NULL THEN {ec_codes} END AS ec_codes FROM corrected
)
SELECT seq, line, received_at, source, origin,
  CASE WHEN json_type(j_message_id) = 'VARCHAR' AND trim(j_message_id ->> '$') <> '' THEN j_message_id ->> '$'
       ELSE 'auto-' || md5(line) END AS message_id,
  type, event,
  CASE WHEN json_type(j_name) = 'VARCHAR' THEN j_name ->> '$' END AS name,
  CASE WHEN {id_ok['userId']} AND NOT {junk['userId']} THEN j_user_id ->> '$' END AS user_id,
  CASE WHEN {id_ok['anonymousId']} AND NOT {junk['anonymousId']} THEN j_anonymous_id ->> '$' END AS anonymous_id,
  CASE WHEN {id_ok['previousId']} AND NOT {junk['previousId']} THEN j_previous_id ->> '$' END AS previous_id,
  CASE WHEN {id_ok['groupId']} THEN j_group_id ->> '$' END AS group_id,
  corrected_ts AS timestamp, ts_original AS original_timestamp, sent_at,
  j_context AS context, j_properties AS properties, j_traits AS traits,
  CASE WHEN json_type(j_consent_0) = 'OBJECT' THEN j_consent_0 END AS consent_context,
  CASE WHEN json_type(j_consent_1) = 'OBJECT' AND type = 'identify' THEN j_consent_1 END AS consent_traits,
  coalesce(CASE WHEN json_type(j_device_type) = 'VARCHAR' THEN lower(j_device_type ->> '$') END,
    CASE WHEN json_type(j_user_agent) = 'VARCHAR' THEN
      CASE WHEN regexp_matches(j_user_agent ->> '$', 'iPad|Tablet') THEN 'tablet'
           WHEN regexp_matches(j_user_agent ->> '$', 'Mobi|Android|iPhone') THEN 'mobile'
           ELSE 'desktop' END END) AS device,
  coalesce(CASE WHEN json_type(j_campaign_medium) = 'VARCHAR' THEN lower(j_campaign_medium ->> '$') END,
           CASE WHEN json_type(j_context_channel) = 'VARCHAR' THEN lower(j_context_channel ->> '$') END,
           CASE WHEN json_type(j_channel) = 'VARCHAR' THEN lower(j_channel ->> '$') END) AS channel,
  CASE WHEN json_type(j_revenue) IN {ALLOWED['number']} THEN (j_revenue ->> '$')::DOUBLE
       WHEN json_type(j_total) IN {ALLOWED['number']} THEN (j_total ->> '$')::DOUBLE END AS revenue,
  CASE WHEN json_type(j_currency) = 'VARCHAR' THEN upper(j_currency ->> '$') END AS currency,
  {", ".join(f"CASE WHEN json_type(j_idt_{i}) IN ('VARCHAR','BIGINT','UBIGINT') AND type = 'identify' THEN j_idt_{i} ->> '$' WHEN json_type(j_idc_{i}) IN ('VARCHAR','BIGINT','UBIGINT') THEN j_idc_{i} ->> '$' END AS ident_{i}" for i in range(len(identifier_traits))) or "NULL AS ident_none"},
  {{problems}} AS problems
FROM coded
"""
    if not validate:
        return template.replace("{problems}", "[]::STRUCT(path VARCHAR, problem VARCHAR)[]")
    return template.replace("{problems}", f"""CASE
    WHEN NOT valid_json THEN [{_problem("'$'", "'is not valid JSON'")}]
    WHEN NOT is_object THEN [{_problem("'$'", "'must be a JSON object'")}]
    WHEN NOT {_present('j_type')} THEN [{_problem("'type'", "'is required'")}]
    WHEN type IS NULL OR type NOT IN ({type_list}) THEN [{_problem("'type'", "'unknown type; expected one of ' || " + q(', '.join(EVENT_TYPES)))}]
    ELSE list_concat(
      list_filter([{', '.join(checks)}], lambda x: x IS NOT NULL),
      {' , '.join(consent[:1])}, {consent[1]},
      {ec_problems})
  END""")
