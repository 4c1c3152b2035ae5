"""OpenAPI pieces of the collection routes: their bodies are parsed by hand (for
speed and for our error format), so their schemas are declared here for client
generators. The admin and read routes' shapes are pydantic models (models.py)."""

from __future__ import annotations

from ..events.spec import EVENT_TYPES
from .models import error_responses

_OBJ = {"type": "object", "additionalProperties": True}
_ID = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
_TIME = {"type": "string", "format": "date-time"}

EVENT_FIELDS = {
    "messageId": {"type": "string", "description": "Idempotency key: the same messageId is stored once."},
    "userId": _ID, "anonymousId": _ID,
    "timestamp": _TIME, "sentAt": _TIME, "originalTimestamp": _TIME,
    "context": _OBJ, "integrations": _OBJ,
}
SCHEMAS = {
    "identify": {"traits": _OBJ},
    "track": {"event": {"type": "string"}, "properties": _OBJ},
    "page": {"name": {"type": "string"}, "properties": _OBJ},
    "screen": {"name": {"type": "string"}, "properties": _OBJ},
    "group": {"groupId": _ID, "traits": _OBJ},
    "alias": {"previousId": _ID},
}
REQUIRED = {"track": ["event"], "group": ["groupId"], "alias": ["previousId", "userId"]}


def event_schema(kind: str) -> dict:
    return {
        "type": "object",
        "properties": {**EVENT_FIELDS, **SCHEMAS[kind]},
        "required": REQUIRED.get(kind, []),
        "description": f"A Segment-Spec {kind} call. userId or anonymousId is required.",
    }


def body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


BATCH_SCHEMA = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": {
            "oneOf": [{**event_schema(k), "properties": {**event_schema(k)["properties"], "type": {"const": k}}}
                      for k in EVENT_TYPES]}},
        "sentAt": _TIME, "context": _OBJ, "writeKey": {"type": "string"},
    },
}
ERRORS = error_responses(400, 401, 404, 413, 415)
