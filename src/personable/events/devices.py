"""The class of device a user agent names: one definition, read by the Python
parser, the SQL parser (its patterns) and data minimization."""

from __future__ import annotations

import re

TABLET = "iPad|Tablet"
MOBILE = "Mobi|Android|iPhone"
BOT = "bot|crawl|spider|slurp|headless|curl|wget|python-requests|httpclient"
# Plain alternations, any case, over a bounded prefix: no pattern here can take more than linear time.
AGENT_CHARS = 512
_TABLET, _MOBILE, _BOT = (re.compile(p, re.I) for p in (TABLET, MOBILE, BOT))


def device_of(agent: str) -> str:
    """tablet, mobile or desktop, as the profile's device is derived from an agent."""
    head = agent[:AGENT_CHARS]
    return "tablet" if _TABLET.search(head) else "mobile" if _MOBILE.search(head) else "desktop"


def device_class(agent: str) -> str:
    """What data minimization keeps of an agent: bot, or the device derived from it (so a minimized
    agent yields the same device as the whole one)."""
    return "bot" if _BOT.search(agent[:AGENT_CHARS]) else device_of(agent)
