"""Every call of an admin or read route becomes an audit record (who, which
route, on what, how it ended), relayed from the HTTP process to the store's
audit log about once a second (privacy/audit.py).

Not recorded: collection (events are their own record), ``/healthz``, and the
recommendation serving route (a page view each; its consent refusals are
counted instead). A request without a valid credential (401) is not recorded
either: it touched nothing, and recording each one would let anyone fill the log.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("personable.server")
NOT_AUDITED = frozenset({"/v1/recommendations/{identifier}"})
SECRET_PARAMS = frozenset({"token", "client_secret", "password"})


class AuditRelay:
    def __init__(self, engine: Any, interval_s: float = 1.0):
        self.engine, self.interval_s = engine, interval_s
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def add(self, request: Request, status: int) -> None:
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        if path in NOT_AUDITED or status == 401:
            return
        principal = getattr(request.state, "principal", None)
        target = ",".join(str(v) for v in request.path_params.values()) or None
        if path == "/v1/oauth/token" and principal is not None:
            target = principal.key_id       # whose token it is
        target = getattr(request.state, "audit_target", target)     # a route may name what it acted on
        query = {k: v for k, v in request.query_params.items() if k not in SECRET_PARAMS}
        entry = {"at": datetime.now(timezone.utc).isoformat(), "actor": principal.key_id if principal else "unknown",
                 "action": getattr(route, "name", path), "target": target,
                 "outcome": "ok" if status < 400 else ("denied" if status == 403 else f"error {status}"),
                 "details": {"method": request.method, "path": path, "status": status, **({"query": query} if query else {})}}
        with self._lock:
            self._pending.append(entry)

    async def flush(self) -> None:
        with self._lock:
            entries, self._pending = self._pending, []
        if not entries:
            return
        try:
            # Once handed over, the audit log keeps them until its store takes them.
            await run_in_threadpool(self.engine.audit.append, entries)
        except Exception:
            with self._lock:       # not handed over (the store process is restarting): they go next time
                self._pending[:0] = entries
            log.exception("audit records could not be handed to the store yet; kept for the next try")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush()
