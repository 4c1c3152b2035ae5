"""Data minimization at collection: fields an event need not carry are cut
down before anything keeps them (``privacy.minimize``).

A rule names a source (or ``"*"``), a field (a dotted path into the Segment
event: ``context.ip``, ``context.userAgent``, ``properties.query``) and what
to keep of it: nothing (``drop``), the network of an IP address
(``ip_prefix``: IPv4 /24 and IPv6 /48 by default), the class of device a user
agent names (``device_class``: mobile, tablet, desktop, bot), or the first
characters (``truncate``).

One implementation, run wherever events enter: on the HTTP path before the
event log takes them, and in the write path on every line (files, the Python
API, lines replayed from the log), so a file import is minimized like a
request. Minimizing twice changes nothing.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any, Iterable

import orjson

from ..events.devices import device_class as classify
from .config import ANY_SOURCE, MinimizeRule

DEVICE_CLASSES = ("bot", "tablet", "mobile", "desktop")


def device_class(user_agent: str) -> str:
    """The class of device a user agent names (a class name given again stays itself)."""
    text = str(user_agent)
    return text if text in DEVICE_CLASSES else classify(text)


def ip_prefix(value: Any, v4_bits: int, v6_bits: int) -> str | None:
    """The network an address is in, as an address (``203.0.113.77`` -> ``203.0.113.0``); None when the
    value is no address (then it is not kept at all)."""
    try:
        ip = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    bits = v4_bits if ip.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False).network_address)


class Minimizer:
    def __init__(self, rules: Iterable[MinimizeRule]):
        self.rules = list(rules)
        # The last key of each path, quoted: a line without any of them needs no parsing.
        self._markers = sorted({f'"{r.field.rsplit(".", 1)[-1]}"' for r in self.rules})

    def __bool__(self) -> bool:
        return bool(self.rules)

    def event(self, event: Any, source: str) -> bool:
        """Minimize a parsed event in place; whether anything changed."""
        if not isinstance(event, dict):
            return False
        changed = False
        for rule in self.rules:
            if rule.source in (ANY_SOURCE, source):
                changed = _apply(event, rule.field.split("."), rule) or changed
        return changed

    def line(self, line: str | None, source: str | None) -> str | None:
        """A JSON line minimized (the same text when nothing applies, or it is not JSON: validation says so)."""
        # A line naming none of the fields needs no parsing (unless a key may be written escaped: \u0069p).
        if not line or not self.rules or (not any(m in line for m in self._markers) and "\\u" not in line):
            return line
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            return line
        return orjson.dumps(event).decode() if self.event(event, source or "") else line


def _apply(node: dict[str, Any], path: list[str], rule: MinimizeRule) -> bool:
    head, rest = path[0], path[1:]
    if head not in node:
        return False
    if rest:
        child = node[head]
        return isinstance(child, dict) and _apply(child, rest, rule)
    value = node[head]
    if rule.keep == "nothing" or value is None:
        del node[head]
        return True
    if rule.keep == "ip_prefix":
        kept = ip_prefix(value, rule.ipv4_bits, rule.ipv6_bits)
    elif rule.keep == "device_class":
        kept = device_class(value) if isinstance(value, str) else None
    else:
        kept = value[:rule.length] if isinstance(value, str) else None
    if kept is None:
        del node[head]
        return True
    if kept == value:
        return False
    node[head] = kept
    return True


@lru_cache(maxsize=16)
def minimizer(rules_json: str) -> Minimizer:
    """The minimizer of the rules as the write path's settings carry them (JSON: hashable, cached)."""
    return Minimizer(MinimizeRule.model_validate(r) for r in orjson.loads(rules_json or "[]"))
