"""The HTTP reference: the smallest ASGI app on the server stack `personable
serve` uses (uvicorn, the same settings as personable.server.run.serve), whose
POST handler reads the body, appends it to a file, fsyncs and answers 200 JSON.
Concurrent requests share one fsync (group commit, as personable's event log
does): a per-request fsync inline on the event loop cannot reach 1,000 req/s on
this disk and would make a reference slower than the thing measured.
What an HTTP collector on this machine can do at best; /v1/track and /v1/batch
are measured against it in the same run.

  python benchmarks/reference_app.py PORT LOGFILE
"""

from __future__ import annotations

import os
import sys


def make_app(log_path: str):
    import asyncio

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    pending: list[tuple[bytes, asyncio.Future]] = []
    flushing = False

    def write_all(bodies: list[bytes]) -> None:
        os.write(fd, b"".join(b + b"\n" for b in bodies))
        os.fsync(fd)

    async def append(body: bytes) -> None:
        """Queue the body; one flusher writes and fsyncs everything queued, in a thread."""
        nonlocal flushing
        done = asyncio.get_running_loop().create_future()
        pending.append((body, done))
        if not flushing:
            flushing = True
            try:
                while pending:
                    batch = pending[:]
                    del pending[:]
                    await asyncio.to_thread(write_all, [b for b, _ in batch])
                    for _, fut in batch:
                        fut.set_result(None)
            finally:
                flushing = False
        await done

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            await append(body)
        payload = b'{"success":true}'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    import uvicorn

    port, log_path = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(make_app(log_path), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                timeout_keep_alive=5, h11_max_incomplete_event_size=65_536)


if __name__ == "__main__":
    main()
