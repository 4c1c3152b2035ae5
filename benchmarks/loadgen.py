"""An open-loop HTTP load generator: requests start on a fixed schedule whether
or not earlier ones have finished, and latency is measured from the scheduled
start, so a slow server cannot hide its queueing (no coordinated omission).

Raw asyncio streams with keep-alive connections keep the generator's own cost
low enough to drive 1,000 req/s from the same 2-core machine.
"""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import urlparse


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def open_loop(url: str, path: str, bodies: list[bytes], rate: float, write_key: str,
                    connections: int = 64) -> tuple[list[float], list[int], float]:
    """POST ``bodies`` to ``path`` at ``rate`` per second with the write key;
    returns latencies (ms), statuses and the achieved rate."""
    host = urlparse(url).hostname
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    requests = [(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
                for body in bodies]
    return await open_loop_raw(url, requests, rate, connections)


def get_requests(url: str, paths: list[str], token: str) -> list[bytes]:
    """GET requests with a bearer token, ready for ``open_loop_raw``."""
    host = urlparse(url).hostname
    return [f"GET {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode() for p in paths]


async def open_loop_raw(url: str, requests: list[bytes], rate: float,
                        connections: int = 64) -> tuple[list[float], list[int], float]:
    """Send prepared HTTP/1.1 ``requests`` at ``rate`` per second over keep-alive connections."""
    u = urlparse(url)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(u.hostname, u.port))
    latencies: list[float] = []
    statuses: list[int] = []

    async def fire(due: float, request: bytes) -> None:
        reader, writer = await pool.get()
        try:
            statuses.append(await _one(reader, writer, request))
        finally:
            pool.put_nowait((reader, writer))
        latencies.append((time.perf_counter() - due) * 1000)

    start = time.perf_counter() + 0.05
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(due, request)))
    await asyncio.gather(*tasks)
    achieved = len(requests) / (time.perf_counter() - start)
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return latencies, statuses, achieved


def run(url: str, path: str, bodies: list[bytes], rate: float, write_key: str) -> tuple[list[float], list[int], float]:
    return asyncio.run(open_loop(url, path, bodies, rate, write_key))


def run_raw(url: str, requests: list[bytes], rate: float) -> tuple[list[float], list[int], float]:
    return asyncio.run(open_loop_raw(url, requests, rate))


async def closed_loop_raw(url: str, requests: list[bytes], seconds: float,
                          connections: int = 4) -> tuple[int, list[int], float]:
    """Send ``requests`` in order, as fast as the server answers, over
    ``connections`` keep-alive connections, until all are sent or ``seconds``
    have passed; returns the requests answered, their statuses and the elapsed
    time. For throughput (``/v1/batch``), where open-loop pacing would only
    measure the pace."""
    u = urlparse(url)
    statuses: list[int] = []
    it = iter(requests)
    start = time.perf_counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        try:
            for request in it:
                statuses.append(await _one(reader, writer, request))
                if time.perf_counter() - start >= seconds:
                    break
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(statuses), statuses, time.perf_counter() - start


def run_closed(url: str, requests: list[bytes], seconds: float, connections: int = 4) -> tuple[int, list[int], float]:
    return asyncio.run(closed_loop_raw(url, requests, seconds, connections))


def post_requests(url: str, path: str, bodies: list[bytes], write_key: str) -> list[bytes]:
    """POST requests with the write key (Basic auth), ready for the raw loops."""
    host = urlparse(url).hostname
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    return [(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            for body in bodies]
