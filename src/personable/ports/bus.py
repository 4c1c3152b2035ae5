"""The event bus: notifications between components (``profiles.changed``,
``segment.entered``, ``events.stored``)."""

from __future__ import annotations

from typing import Any, Callable, Protocol

Handler = Callable[[Any], None]


class EventBus(Protocol):
    def publish(self, topic: str, message: Any) -> None: ...
    def subscribe(self, topic: str, handler: Handler) -> None: ...
