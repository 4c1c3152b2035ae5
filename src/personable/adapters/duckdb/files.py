"""Bulk reading of import files into raw event lines, in SQL.

Every kind of file becomes JSON event lines, so all imports share the one write
path: JSONL events are read line by line as text; CSV / Parquet events, CRM
customer records (-> identify) and orders (-> events.order_event) are turned into
Segment events by a generated SELECT. Column mappings say which file column
holds which field.
"""

from __future__ import annotations

import duckdb

from ...errors import ImportFailed
from ...events.spec import ORDER_COMPLETED
from .parse_sql import q

EVENT_FIELDS = ("messageId", "type", "event", "userId", "anonymousId", "previousId", "groupId",
                "name", "timestamp", "sentAt", "channel")
_ALIASES = {
    "message_id": "messageId", "user_id": "userId", "anonymous_id": "anonymousId",
    "previous_id": "previousId", "group_id": "groupId", "sent_at": "sentAt",
}
CRM_FIELDS = ("user_id", "email", "timestamp")
ORDER_FIELDS = ("user_id", "email", "anonymous_id", "order_id", "revenue", "currency", "timestamp", "products")


def _reader(path: str, fmt: str, typed: bool = False) -> str:
    """``typed`` CSV reading detects numbers (event properties must keep them);
    CRM and order files are read as text so that nothing is coerced silently."""
    lit = q(path)
    if fmt == "parquet":
        return f"read_parquet({lit})"
    if fmt == "csv":
        return (f"read_csv({lit}, header=true, all_varchar={'false' if typed else 'true'}, store_rejects=true, "
                "rejects_table='_rejects', rejects_scan='_reject_scans')")
    if fmt == "jsonl":
        return (f"read_csv({lit}, columns={{'line': 'VARCHAR'}}, delim='\x1f', quote='', escape='', header=false, "
                "auto_detect=false, strict_mode=false, max_line_size=67108864, store_rejects=true, "
                "rejects_table='_rejects', rejects_scan='_reject_scans')")
    raise ImportFailed(f"unknown file format {fmt!r}; use jsonl, csv or parquet")


def _columns(con: duckdb.DuckDBPyConnection, reader: str, path: str, fmt: str) -> list[str]:
    try:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
    except duckdb.Error as exc:
        raise ImportFailed(f"cannot read {path} as {fmt}: {exc}") from exc


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(col: str) -> str:
    """A column as text; dates and timestamps as ISO 8601 (UTC)."""
    c = _ident(col)
    return (f"CASE WHEN typeof({c}) LIKE 'TIMESTAMP%' OR typeof({c}) = 'DATE' "
            f"THEN strftime({c}::TIMESTAMPTZ, '%Y-%m-%dT%H:%M:%S.%fZ') ELSE {c}::VARCHAR END")


def _check_mapping(mapping: dict[str, str], columns: list[str], path: str) -> None:
    missing = {field: col for field, col in mapping.items() if col not in columns}
    if missing:
        pretty = ", ".join(f"{f} -> {c!r}" for f, c in missing.items())
        raise ImportFailed(f"{path}: mapped columns not in the file: {pretty}; the file has {', '.join(columns)}")


def lines_select(con: duckdb.DuckDBPyConnection, path: str, fmt: str, kind: str, mapping: dict[str, str],
                 order_event: str = ORDER_COMPLETED) -> str:
    """A SELECT producing one JSON event per record in a ``line`` column."""
    if fmt == "jsonl" and kind == "events":
        return f"SELECT line FROM {_reader(path, fmt)}"
    if fmt == "jsonl":
        # JSONL of CRM records / orders: read as a table, then map like CSV.
        reader = f"read_json({q(path)}, format='newline_delimited')"
        try:
            columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        except duckdb.Error as exc:
            raise ImportFailed(f"cannot read {path} as JSON lines: {exc}") from exc
    else:
        reader = _reader(path, fmt, typed=(kind == "events"))
        columns = _columns(con, reader, path, fmt)
    _check_mapping(mapping, columns, path)
    if kind == "events":
        return _events_select(reader, columns, mapping)
    if kind == "crm":
        return _crm_select(reader, columns, mapping)
    if kind == "orders":
        return _orders_select(reader, columns, mapping, order_event)
    raise ImportFailed(f"unknown import kind {kind!r}; use events, crm or orders")


def _events_select(reader: str, columns: list[str], mapping: dict[str, str]) -> str:
    by_field = {f: c for f, c in mapping.items()}
    for col in columns:
        field = _ALIASES.get(col, col)
        if field in EVENT_FIELDS:
            by_field.setdefault(field, col)
    used = set(by_field.values())
    parts = [f"{q(f)}, {_text(c)}" for f, c in by_field.items() if f in EVENT_FIELDS]
    nested: dict[str, list[str]] = {"properties": [], "traits": [], "context": []}
    for col in columns:
        if col in used:
            continue
        head, _, rest = col.partition(".")
        if head in nested and rest:
            nested[head].append(f"{q(rest)}, {_ident(col)}")
        else:
            nested["properties"].append(f"{q(col)}, {_ident(col)}")
    for name, items in nested.items():
        if items:
            parts.append(f"{q(name)}, json_object({', '.join(items)})")
    return f"SELECT json_object({', '.join(parts)})::VARCHAR AS line FROM {reader}"


def _crm_select(reader: str, columns: list[str], mapping: dict[str, str]) -> str:
    # Neither a user id nor an email column is needed (docs/configuration.md):
    # each row without a user id is an anonymous profile of its own, linked by
    # whatever identifier traits it has (a phone, say) or later by resolution.
    user, _email, ts = (mapping.get(k) for k in CRM_FIELDS)
    trait_cols = {f: c for f, c in mapping.items() if f not in ("user_id", "timestamp")}
    for col in columns:
        if col not in mapping.values():
            trait_cols.setdefault(col, col)
    traits = ", ".join(f"{q(f)}, {_ident(c)}" for f, c in trait_cols.items())
    # A record without a user id gets an anonymous id of its own; the email links
    # it (as an identifier trait, with the junk guards). Deriving the id from the
    # email would make every record with a blank or junk email one person.
    anon = "'crm-' || md5(row_json::VARCHAR)"
    user_expr = f"nullif(trim({_ident(user)}::VARCHAR), '')" if user else "NULL"
    ts_expr = _text(ts) if ts else "NULL"
    return f"""SELECT json_object('type', 'identify', 'messageId', 'crm-' || md5(row_json::VARCHAR),
        'userId', uid, 'anonymousId', CASE WHEN uid IS NULL THEN anon END,
        'timestamp', ts, 'traits', row_json, 'context', json_object('source', 'crm'))::VARCHAR AS line
    FROM (SELECT row_json, uid, {anon} AS anon, ts
          FROM (SELECT json_object({traits}) AS row_json, {user_expr} AS uid, {ts_expr} AS ts FROM {reader}))"""


def _orders_select(reader: str, columns: list[str], mapping: dict[str, str], order_event: str) -> str:
    m = {f: mapping.get(f) for f in ORDER_FIELDS}
    if not m["order_id"]:
        raise ImportFailed("an orders import needs an order_id column mapping (imports.orders in personable.yaml or --map)")
    if not (m["user_id"] or m["email"] or m["anonymous_id"]):
        raise ImportFailed("an orders import needs a user_id, email or anonymous_id column mapping")
    used = {c for c in m.values() if c}
    extra = [c for c in columns if c not in used]

    def col(field: str, cast: str | None = None) -> str:
        c = m[field]
        if not c:
            return "NULL"
        if cast == "number":
            return f"coalesce(to_json(try_cast({_ident(c)} AS DOUBLE)), to_json({_ident(c)}))"
        return f"{_text(c)}"

    props = [f"'order_id', {col('order_id')}", f"'revenue', {col('revenue', 'number')}",
             f"'currency', {col('currency')}"]
    if m["products"]:
        props.append(f"'products', try_cast({_ident(m['products'])} AS JSON)")
    props += [f"{q(c)}, {_ident(c)}" for c in extra]
    user = f"nullif(trim({_ident(m['user_id'])}::VARCHAR), '')" if m["user_id"] else "NULL"
    # Without an anonymous id column an order gets its own; its email (context
    # traits) links it to the customer, as an identifier with the junk guards.
    anon = (f"nullif(trim({_ident(m['anonymous_id'])}::VARCHAR), '')" if m["anonymous_id"]
            else f"'order-' || md5({col('order_id')})")
    ctx = f"json_object('traits', json_object('email', {_ident(m['email'])}))" if m["email"] else "json_object()"
    return f"""SELECT json_object('type', 'track', 'event', {q(order_event)},
        'messageId', 'order-' || {col('order_id')}, 'userId', {user}, 'anonymousId', {anon},
        'timestamp', {col('timestamp')}, 'properties', json_object({', '.join(props)}), 'context', {ctx})::VARCHAR AS line
    FROM {reader}"""
