"""Many statements at once, or one compaction alone.

Each statement on a cursor passes the gate shared; a compaction (which
closes every connection and swaps the file, ``DuckDBStore.compact``) passes
it alone, once the statements under way have ended. A waiting compaction
holds new statements back, so a steady stream of reads cannot starve it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0
        self._local = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth or getattr(self._local, "alone", False):
            # A statement inside another (a helper that reads while reading) or inside the compaction itself.
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._cond:
                self._shared -= 1
                if not self._shared:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._shared:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True
        self._local.alone = True
        try:
            yield
        finally:
            self._local.alone = False
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
