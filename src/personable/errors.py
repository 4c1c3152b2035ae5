"""One exception root with stable codes.

Every error a user can see is a :class:`PersonableError`. Each subclass has a
stable ``code`` (used by the HTTP API and ``--json`` output) and the HTTP status
it maps to. Third-party errors are translated at the boundary with
``raise ... from exc`` so the original stays attached for debugging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One precise problem: where (a field path like ``batch[3].userId``) and what."""

    path: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.problem}


class PersonableError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str, details: list[Problem] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body["details"] = [d.as_dict() for d in self.details]
        body.update(self.extra)
        return {"error": body}


class ConfigError(PersonableError):
    code = "config_invalid"
    status = 400


class ProjectNotFound(PersonableError):
    code = "project_not_found"
    status = 404


class ValidationFailed(PersonableError):
    code = "validation_failed"
    status = 400


class MalformedBody(PersonableError):
    code = "malformed_body"
    status = 400


class PayloadTooLarge(PersonableError):
    code = "payload_too_large"
    status = 413


class Unauthorized(PersonableError):
    code = "unauthorized"
    status = 401


class Forbidden(PersonableError):
    """A valid credential without the scope a route needs (``missing_scope`` names it)."""
    code = "forbidden"
    status = 403


class RateLimited(PersonableError):
    """A key past its rate limit: retry after ``retry_after`` seconds (also the Retry-After header)."""
    code = "rate_limited"
    status = 429


class NotFound(PersonableError):
    code = "not_found"
    status = 404


class ImportFailed(PersonableError):
    code = "import_failed"
    status = 400


class StoreError(PersonableError):
    code = "store_error"
    status = 503


class ServerUnavailable(PersonableError):
    code = "server_unavailable"
    status = 503


class ReadOnlyQuery(PersonableError):
    """A statement that would change data was sent to a read-only query API."""
    code = "read_only"
    status = 400


class PathNotAllowed(PersonableError):
    """A server-side file path outside the configured import / export folder."""
    code = "path_not_allowed"
    status = 403


class UnsupportedEncoding(PersonableError):
    code = "unsupported_encoding"
    status = 415


class RequestTimeout(PersonableError):
    code = "request_timeout"
    status = 408


class ServerRunning(PersonableError):
    """Work that must run on the project's own files while a server owns them."""
    code = "server_running"
    status = 409


def _subclasses(cls: type[PersonableError]) -> list[type[PersonableError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def error_from_dict(body: dict[str, Any], status: int) -> PersonableError:
    """An error as the HTTP API sent it (``{"error": {...}}``'s inside), rebuilt
    as the class that raised it: the same code, status, details and extra fields.

    A code no loaded class has (e.g. ``internal``, or a domain error whose module
    this process never imported) comes back as a PersonableError carrying it."""
    code = str(body.get("code") or "error")
    details = [Problem(str(d.get("path", "")), str(d.get("problem", "")))
               for d in body.get("details") or [] if isinstance(d, dict)]
    extra = {k: v for k, v in body.items() if k not in ("code", "message", "details")}
    message = str(body.get("message") or f"the server answered {status}")
    cls = next((c for c in _subclasses(PersonableError) if c.code == code and c.status == status), None)
    error = (cls or PersonableError)(message, details, **extra)
    if cls is None:
        error.code, error.status = code, status
    return error


@dataclass
class ErrorList:
    """Accumulates problems so a validator reports all of them at once."""

    items: list[Problem] = field(default_factory=list)

    def add(self, path: str, problem: str) -> None:
        self.items.append(Problem(path, problem))

    def __bool__(self) -> bool:
        return bool(self.items)
