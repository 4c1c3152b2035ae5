"""The item catalog and the interaction log, read from the store.

A catalog file (CSV, JSON lines or Parquet) has one row per item: an id
(``item_id``, ``product_id`` or ``sku``) and any of name, category, brand,
price, description, in_stock; every other column is kept as an attribute.
Items that only ever appear in events (a ``product_id`` with a name, category,
brand and price in the event's properties) join the catalog too, without
overwriting what a catalog file said.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import ibis
import ibis.expr.types as ir
import orjson
import pandas as pd
import pyarrow as pa

from ..errors import Problem, ValidationFailed
from ..events.spec import AMOUNT_PROBLEM, MAX_AMOUNT, ORDER_COMPLETED
from ..tables import PROFILE_EVENTS as EVENTS

ID_COLUMNS = ("item_id", "product_id", "sku", "id")
ALIASES = {"title": "name", "available": "in_stock", "availability": "in_stock", "stock": "in_stock"}
KNOWN = ("name", "category", "brand", "price", "description", "in_stock")
PRODUCT_EVENTS = ("Product Viewed", "Product Added", "Product Removed", "Product Clicked")
ORDER_EVENT = ORDER_COMPLETED   # the default; the service passes events.order_event


def read_catalog_file(path: str | Path) -> pa.Table:
    """A catalog file as rows of ``ITEM_COLUMNS``; clear errors for what cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ValidationFailed(f"no such catalog file: {path}")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix in (".jsonl", ".ndjson", ".json"):
            frame = pd.read_json(path, lines=path.suffix != ".json", dtype=False)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as exc:
        raise ValidationFailed(f"cannot read the catalog {path.name}: {exc}") from exc
    frame = frame.rename(columns={c: ALIASES.get(c.strip().lower(), c.strip().lower()) for c in frame.columns})
    id_col = next((c for c in ID_COLUMNS if c in frame.columns), None)
    if id_col is None:
        raise ValidationFailed(f"the catalog {path.name} has no id column",
                               [Problem("columns", f"expected one of {', '.join(ID_COLUMNS)}")])
    ids = frame[id_col].astype(str).str.strip()
    problems = []
    if (ids == "").any():
        problems.append(Problem(id_col, f"{int((ids == '').sum())} rows have no id"))
    price = pd.to_numeric(frame["price"], errors="coerce") if "price" in frame else pd.Series([None] * len(frame))
    if "price" in frame:
        bad = price.isna() & frame["price"].astype(str).str.strip().ne("")
        if bad.any():
            problems.append(Problem("price", f"{int(bad.sum())} prices are not numbers, e.g. {frame['price'][bad].iloc[0]!r}"))
        # Bounded like revenue: an infinite or astronomical price would poison every sum and ratio over it.
        huge = price.notna() & ~(price.abs() <= MAX_AMOUNT)
        if huge.any():
            problems.append(Problem("price", f"{int(huge.sum())} prices {AMOUNT_PROBLEM}, "
                                             f"e.g. {frame['price'][huge].iloc[0]!r}"))
    if problems:
        raise ValidationFailed(f"the catalog {path.name} has invalid rows", problems)
    stock = frame["in_stock"].astype(str).str.strip().str.lower().map(
        {"true": True, "1": True, "yes": True, "in stock": True, "false": False, "0": False, "no": False,
         "out of stock": False, "": None}) if "in_stock" in frame else pd.Series([None] * len(frame))
    extra = [c for c in frame.columns if c not in KNOWN and c != id_col]
    attributes = [orjson.dumps({k: v for k, v in row.items() if v not in ("", None)}, default=str).decode()
                  for row in frame[extra].to_dict("records")] if extra else [None] * len(frame)

    def text(col: str) -> pa.Array:
        # Typed even when the file lacks the column or leaves it empty: a column of
        # nothing but nulls would otherwise be Arrow's null type, which a store
        # cannot stage (PostgreSQL has no column type for it).
        values = [v or None for v in frame[col].astype(str).str.strip()] if col in frame else [None] * len(frame)
        return pa.array(values, pa.string())

    return pa.table({"item_id": pa.array(ids.tolist(), pa.string()), "name": text("name"), "category": text("category"),
                     "brand": text("brand"), "price": pa.array(price.tolist(), pa.float64()),
                     "description": text("description"), "in_stock": pa.array(stock.tolist(), pa.bool_()),
                     "attributes": pa.array(attributes, pa.string())})


def items_from_events() -> ir.Table:
    """Each product seen in events, with the latest name, category, brand and price it was sent with."""
    e = EVENTS.filter(EVENTS.event.isin(PRODUCT_EVENTS))
    p = e.properties
    rows = e.select(item_id=p["product_id"].str, name=p["name"].str, category=p["category"].str,
                    brand=p["brand"].str, price=p["price"].float, timestamp=e.timestamp)
    rows = rows.filter(rows.item_id.notnull())
    # An event's price outside the amount bound (or not finite) is not a price: left empty, as missing.
    rows = rows.mutate(price=(rows.price.abs() <= MAX_AMOUNT).ifelse(rows.price, ibis.null("float64")))
    return rows.group_by("item_id").aggregate(
        name=rows.name.argmax(rows.timestamp), category=rows.category.argmax(rows.timestamp),
        brand=rows.brand.argmax(rows.timestamp), price=rows.price.argmax(rows.timestamp))


def interactions_expr(kinds: tuple[str, ...], since: datetime | None = None,
                      order_event: str = ORDER_EVENT) -> ir.Table:
    """(user, item, kind, ts, device, channel) per product interaction: product
    events by their ``product_id``, orders (``order_event``) by each of their ``products``."""
    e = EVENTS.filter(EVENTS.type == "track")
    if since is not None:
        e = e.filter(e.timestamp >= ibis.literal(since))
    single = e.filter(e.event.isin([k for k in kinds if k != order_event]))
    single = single.select(user=single.profile_id, item=single.properties["product_id"].str, kind=single.event,
                           ts=single.timestamp, device=single.device, channel=single.channel)
    parts = [single]
    if order_event in kinds:
        orders = e.filter(e.event == order_event)
        orders = orders.select("profile_id", "event", "timestamp", "device", "channel",
                               product=orders.properties["products"].array.unnest())
        parts.append(orders.select(user=orders.profile_id, item=orders.product["product_id"].str, kind=orders.event,
                                   ts=orders.timestamp, device=orders.device, channel=orders.channel))
    out = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
    return out.filter(out.item.notnull() & out.user.notnull())
