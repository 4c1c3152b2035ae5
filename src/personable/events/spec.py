"""The Segment Spec as data, shared by the Python validator (HTTP path) and the
SQL validator (file path) so that both judge an event the same way."""

from __future__ import annotations

import re

EVENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")

# Top-level fields that, when present, must be JSON objects.
OBJECT_FIELDS = ("context", "properties", "traits", "integrations")
# Top-level fields that, when present, must be strings (ids may also be numbers,
# which Segment's own API accepts and turns into strings).
STRING_FIELDS = ("messageId", "event", "name", "channel")
ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")
TIME_FIELDS = ("timestamp", "sentAt", "originalTimestamp")
MAX_ID_LENGTH = 512
# What counts as blank around an id or a required string, identically in Python
# (str.strip would also strip control characters) and in SQL (trim(x, chars)).
WHITESPACE = " \t\n\r\x0b\x0c"


def is_blank(text: str) -> bool:
    """Blank by WHITESPACE (a messageId of only these is no messageId)."""
    return not text.strip(WHITESPACE)

# ISO 8601 date or date-time, with Z or +HH:MM (naive means UTC).
ISO_8601_PATTERN = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:\d{2})?"
ISO_8601 = re.compile(ISO_8601_PATTERN + r"\Z")
# Event times must fall in this range (UTC). Outside it a value is a typo or an
# attack (year 1 or 9999 overflowed Python's datetime arithmetic into a 500);
# both validators refuse it with the same problem.
EARLIEST_TIME = "1900-01-01T00:00:00+00:00"
LATEST_TIME = "2200-01-01T00:00:00+00:00"
TIME_RANGE_PROBLEM = "must be between 1900 and 2200"

# A number no JSON reader can hold (beyond a double's ±1.8e308, e.g. 1e999 or a
# 400-digit integer) is refused with its event: stored, it made that profile's
# document unreadable (orjson and JavaScript read it as Infinity, or fail).
NUMBER_RANGE_PROBLEM = "holds a number beyond the range of a double (about ±1.8e308)"

# How deeply an event may nest (the event object itself is level 1). Deeper
# events are refused whole: they cannot be serialized back (orjson stops at 254
# levels) and no real client sends them.
MAX_DEPTH = 64
DEPTH_PROBLEM = f"is nested deeper than {MAX_DEPTH} levels"

# Consent sent by clients: objects of purpose -> boolean. Segment's consent
# management puts it in context.consent.categoryPreferences; identify calls may
# carry it as traits.consent.
CONSENT_FIELDS = (("context", "consent", "categoryPreferences"), ("traits", "consent"))

# Required fields per type beyond "userId or anonymousId".
REQUIRED_BY_TYPE = {
    "track": ("event",),
    "alias": ("previousId", "userId"),
    "group": ("groupId",),
}

# Typed properties of the Segment e-commerce spec (v2). "number" accepts ints and
# floats; "integer" only whole numbers; "id" strings or integers; "products" an
# array of product objects typed by PRODUCT_FIELDS.
PRODUCT_FIELDS = {
    "product_id": "id", "sku": "id", "category": "string", "name": "string",
    "brand": "string", "variant": "string", "price": "number", "quantity": "integer",
    "coupon": "string", "position": "integer", "url": "string", "image_url": "string",
}
_ORDER = {
    "order_id": "id", "checkout_id": "id", "affiliation": "string", "total": "number",
    "subtotal": "number", "revenue": "number", "shipping": "number", "tax": "number",
    "discount": "number", "coupon": "string", "currency": "string", "products": "products",
}
_PRODUCT_EVENT = {**PRODUCT_FIELDS, "cart_id": "id", "value": "number", "currency": "string"}
ECOMMERCE_EVENTS: dict[str, dict[str, str]] = {
    "Products Searched": {"query": "string"},
    "Product List Viewed": {"list_id": "id", "category": "string", "products": "products"},
    "Product List Filtered": {"list_id": "id", "category": "string", "products": "products"},
    "Promotion Viewed": {"promotion_id": "id", "creative": "string", "name": "string", "position": "string"},
    "Promotion Clicked": {"promotion_id": "id", "creative": "string", "name": "string", "position": "string"},
    "Product Clicked": _PRODUCT_EVENT,
    "Product Viewed": _PRODUCT_EVENT,
    "Product Added": _PRODUCT_EVENT,
    "Product Removed": _PRODUCT_EVENT,
    "Product Added to Wishlist": {**_PRODUCT_EVENT, "wishlist_id": "id", "wishlist_name": "string"},
    "Product Shared": {**_PRODUCT_EVENT, "share_via": "string"},
    "Product Reviewed": {"product_id": "id", "review_id": "id", "rating": "number"},
    "Cart Viewed": {"cart_id": "id", "products": "products"},
    "Checkout Started": {**_ORDER, "value": "number"},
    "Checkout Step Viewed": {"checkout_id": "id", "step": "integer"},
    "Checkout Step Completed": {"checkout_id": "id", "step": "integer"},
    "Payment Info Entered": {"checkout_id": "id", "order_id": "id", "step": "integer"},
    "Order Updated": _ORDER,
    "Order Completed": _ORDER,
    "Order Refunded": _ORDER,
    "Order Cancelled": _ORDER,
    "Coupon Entered": {"order_id": "id", "cart_id": "id", "coupon_id": "id"},
    "Coupon Applied": {"order_id": "id", "cart_id": "id", "coupon_id": "id", "discount": "number"},
    "Coupon Denied": {"order_id": "id", "cart_id": "id", "coupon_id": "id"},
    "Coupon Removed": {"order_id": "id", "cart_id": "id", "coupon_id": "id", "discount": "number"},
}
ORDER_COMPLETED = "Order Completed"

# The money amounts that feed profile aggregates (properties.revenue, else
# properties.total) must be finite and at most this large in magnitude: two
# orders of 1.7e308 summed to Infinity, and that profile answered 500 forever.
# A quadrillion still holds any real order in any currency's major unit.
AMOUNT_FIELDS = ("revenue", "total")
MAX_AMOUNT = 1e15
AMOUNT_PROBLEM = "must be a finite amount between -1e15 and 1e15"
