"""Group commit for the HTTP write path.

Requests hand their validated events to the collector and wait. A single writer
thread takes everything that arrived in the last few milliseconds and makes it
durable in one go -- one fsync'ed append to the event log (or, with
``memory://``, one store transaction) -- and then wakes every waiting request:
an event is acknowledged only once it is durable, and many requests share the cost.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from ..engine import Accepted, Engine


class Collector:
    def __init__(self, engine: Engine, interval_ms: float = 2.0, max_events: int = 5_000):
        self.engine = engine
        self.interval = interval_ms / 1000.0
        self.max_events = max_events
        self._pending: list[tuple[list[Accepted], asyncio.Future]] = []
        self._pending_events = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="personable-writer")
        self.batches = 0

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._flush()  # whatever is still waiting is written before we go
        self._executor.shutdown(wait=True)

    async def submit(self, items: list[Accepted]) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((items, fut))
        self._pending_events += len(items)
        assert self._wake is not None
        self._wake.set()
        await fut

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Let concurrent requests join this commit, unless it is already large.
            deadline = time.monotonic() + self.interval
            while self._pending_events < self.max_events and time.monotonic() < deadline:
                await asyncio.sleep(self.interval / 4)
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_events = self._pending, [], 0
        items = [item for chunk, _ in pending for item in chunk]
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.accept, items)
        except Exception as exc:  # every waiter learns the commit failed; none is acknowledged
            for _, fut in pending:
                if not fut.done():
                    fut.set_exception(exc)
        else:
            for _, fut in pending:
                if not fut.done():
                    fut.set_result(None)
        self.batches += 1
