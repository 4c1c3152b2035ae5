"""The in-process EventBus (the embedded default; Kafka plugs in at scale).

Handlers run synchronously, in the order they subscribed, on the publisher's
thread: the composition root relies on that order (realtime segments judge a
batch before the online projection writes its documents)."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger(__name__)


class InProcessBus:
    capabilities = frozenset({"in_process"})

    def __init__(self) -> None:
        self._handlers: dict[str, list[Callable[[Any], None]]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Callable[[Any], None]) -> None:
        with self._lock:
            self._handlers[topic].append(handler)

    def publish(self, topic: str, message: Any) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        for handler in handlers:
            try:
                handler(message)
            except Exception:  # a failing subscriber must not fail the write path
                log.exception("handler for %s failed", topic)
