"""Scopes: what a credential may do.

A route belongs to a domain (its router's tag); reading it (GET) needs
``<domain>:read``, anything else ``<domain>:write``. ``<domain>:*`` grants
both; ``admin`` grants everything; ``privacy:erase`` (or ``privacy:*``) erases
people and verifies erasures; ``collect`` lets a key send events. A
publishable key holds only ``collect`` and ``self:read``: the latter reads a
visitor's own recommendations (and, later, decisions), nothing else.
"""

from __future__ import annotations

from typing import Iterable

DOMAINS = ("profiles", "ingest", "quality", "identity", "segments", "models", "recommendations", "privacy")
ADMIN, COLLECT, SELF_READ, ERASE = "admin", "collect", "self:read", "privacy:erase"
SCOPES = tuple(f"{d}:{a}" for d in DOMAINS for a in ("read", "write")) + (ADMIN, COLLECT, SELF_READ, ERASE)
# Routes whose scope is not their domain's read or write: erasing a person is a right of its own.
ROUTE_SCOPES = {("DELETE", "/v1/profiles/{identifier}"): ERASE, ("POST", "/v1/privacy/verify"): ERASE,
                ("POST", "/v1/admin/privacy/erasures"): ERASE,
                ("POST", "/v1/admin/privacy/erasures/resume"): ERASE, ("POST", "/v1/admin/privacy/rekey"): ADMIN}
PUBLISHABLE_SCOPES = (COLLECT, SELF_READ)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes as given, each known (``domain:*`` allowed); a ValueError names the first unknown one."""
    out = []
    for scope in scopes:
        scope = scope.strip()
        domain, _, action = scope.partition(":")
        if scope not in SCOPES and not (action == "*" and domain in DOMAINS):
            raise ValueError(f"unknown scope {scope!r}; scopes: {', '.join(SCOPES)} (or DOMAIN:*)")
        if scope not in out:
            out.append(scope)
    return out


def needed(domain: str, method: str, path: str | None = None) -> str:
    return ROUTE_SCOPES.get((method, path or "")) or f"{domain}:{'read' if method in ('GET', 'HEAD') else 'write'}"


def grants(held: Iterable[str], scope: str) -> bool:
    held = set(held)
    if ADMIN in held or scope in held:
        return True
    domain, _, _ = scope.partition(":")
    return domain in DOMAINS and f"{domain}:*" in held
