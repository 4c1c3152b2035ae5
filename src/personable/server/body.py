"""Reading request bodies safely: size limits, gzip, UTF-8, JSON, write keys."""

from __future__ import annotations

import asyncio
import base64
import zlib
from typing import Any

import orjson
from starlette.requests import Request

from ..errors import (
    MalformedBody, PayloadTooLarge, Problem, RequestTimeout, Unauthorized, UnsupportedEncoding, ValidationFailed,
)


# A client gets this long to send its whole body (server.body_timeout_s, which
# the application puts in its state): a slow (or hostile) one no longer holds
# a socket and a worker forever.
BODY_READ_TIMEOUT_S = 30.0


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The request's body, whole, within ``timeout`` seconds (default: the
    application's ``body_timeout_s``, else ``BODY_READ_TIMEOUT_S``)."""
    if timeout is None:
        app = request.scope.get("app")
        timeout = getattr(getattr(app, "state", None), "body_timeout_s", None) or BODY_READ_TIMEOUT_S
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise UnsupportedEncoding(f"Content-Encoding {encoding[:40]!r} is not supported; send gzip or no encoding",
                                  [Problem("Content-Encoding", "must be gzip or identity")])
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g} s") from exc
    body = b"".join(chunks)
    if encoding == "gzip":
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = d.decompress(body, limit + 1)
        except zlib.error as exc:
            raise MalformedBody(f"body is not valid gzip: {exc}") from exc
        if len(body) > limit:
            raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes")
        if not d.eof:  # a cut-off stream decompresses without error, but is not whole
            raise MalformedBody("body is truncated gzip (the stream ends before its end marker)")
    return body


def parse_json(body: bytes) -> Any:
    """The body as JSON. orjson checks UTF-8 itself: the body is only decoded
    (for the byte offset in the message) once it failed -- decoding every body
    first cost a copy of it on the collection path."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not body.strip():
            raise MalformedBody("request body is empty; expected a JSON object") from None
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise MalformedBody(
                f"request body is not valid UTF-8 (byte {bad.start}: {body[bad.start:bad.start + 1]!r})",
                details=[Problem("$", "invalid UTF-8")],
            ) from bad
        raise MalformedBody(f"request body is not valid JSON: {exc}", details=[Problem("$", str(exc))]) from exc


def write_key_from(request: Request, payload: Any) -> str | None:
    """Segment sends the write key as the Basic-auth user; the batch body may carry it too."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unauthorized("Authorization header is not valid Basic auth") from exc
        return user.split(":", 1)[0]
    if isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        return payload["writeKey"]
    return None


async def read_object(request: Request, limit: int, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (``{}`` for an empty body when ``empty_ok``)."""
    raw = await read_body(request, limit)
    if empty_ok and not raw.strip():
        return {}
    payload = parse_json(raw)
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object", [Problem("$", "must be a JSON object")])
    return payload
