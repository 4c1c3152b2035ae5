"""Slow and broken clients on a real server on 127.0.0.1 (issue 11, point 7):
a request whose line or headers stall is dropped after server.header_timeout_s
(uvicorn has no such timeout: its keep-alive timer stops at a request's first
byte), a body that stalls gets a 408, and a 500 on a kept-alive connection
says ``Connection: close`` and closes it."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import yaml

from conftest import free_port, keys, start_server, stop_server
from personable.config import write_starter


def _read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it hangs up (a stalled socket fails the test by its timeout)."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def _response(s: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += s.recv(65536)
    return head, body


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """`personable serve` with one-second header and body deadlines."""
    project = tmp_path_factory.mktemp("timeouts") / "proj"
    write_starter(project, "timeouts")
    _deadlines(project, header=1, body=1)
    s = start_server(project)
    yield s
    stop_server(s)


def _deadlines(project, **seconds: float) -> None:
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    for what, value in seconds.items():
        raw["server"][f"{what}_timeout_s"] = value
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _stalled_body_answer(port: int, write_key: str, wait_s: float) -> tuple[bytes, bytes]:
    """POST half a body, then nothing: what the server answers within ``wait_s``."""
    import base64

    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"userId\": ".encode())
        return _response(s)    # the rest of the body never comes


def _is_body_timeout(head: bytes, body: bytes) -> bool:
    return head.startswith(b"HTTP/1.1 408") and (b"request_timeout" in body or b"did not arrive" in body)


def test_the_body_deadline_is_configured(impatient):
    """server.body_timeout_s: 1 answers a stalled body in about a second (the
    deadline was a constant 30 s, which this 10 s socket timeout would not see)."""
    head, body = _stalled_body_answer(impatient.port, impatient.write_key, wait_s=10)
    assert _is_body_timeout(head, body), (head, body)


@pytest.mark.parametrize("sent", [b"", b"GET /heal", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "],
                         ids=["nothing", "half_a_request_line", "half_the_headers"])
def test_a_stalled_request_line_or_headers_are_dropped(impatient, sent):
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=30) as s:
        if sent:
            s.sendall(sent)
        answer = _read_until_closed(s)   # it used to wait forever (here: the socket's 30 s timeout)
    assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()


def test_the_header_deadline_starts_again_after_each_response(impatient):
    """A kept-alive connection serves request after request, each within the deadline;
    the deadline applies to the wait for the next one's headers."""
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=30) as s:
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _ = _response(s)
            assert head.startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /healthz HTTP/1.1\r\n")     # then stalls
        assert _read_until_closed(s).startswith(b"HTTP/1.1 408")


# -- in-process: the same protocol and application, a fault the test injects, a short body deadline ----
@pytest.fixture(params=["auto", "h11"])
def in_process(project, request):
    """The application of `personable serve` under uvicorn with the same
    protocol (the one uvicorn picks, httptools where installed, and h11), in
    this process, so a test can add a route that fails; a one-second body
    deadline."""
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from personable import Engine
    from personable.server.app import create_app
    from personable.server.run import header_timeout_protocol

    _deadlines(project, body=1)
    engine = Engine(project)
    app = create_app(engine)

    @app.get("/test/fails")
    async def fails() -> None:
        raise RuntimeError("a fault injected by the test")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                           http=header_timeout_protocol(2.0, H11Protocol if request.param == "h11"
                                                                        else None),
                                           timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield port, keys(project)
    server.should_exit = True
    thread.join(30)
    engine.close()
    import gc   # the application registers a collection timer (app.py); it must not outlive this server

    gc.callbacks[:] = [c for c in gc.callbacks if getattr(c, "__module__", "") != "personable.server.app"]


def test_a_500_on_a_kept_alive_connection_says_connection_close(in_process):
    port, _ = in_process
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = _response(s)
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()   # kept alive
        s.sendall(b"GET /test/fails HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = _response(s)
        assert head.startswith(b"HTTP/1.1 500") and b"connection: close" in head.lower()
        assert b'"internal"' in body and b"injected" not in body        # no internals leak
        assert _read_until_closed(s) == b""                                # and it does close


def test_stalled_headers_are_dropped_by_either_protocol(in_process):
    port, _ = in_process
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(s)[0].startswith(b"HTTP/1.1 200")
        s.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-")
        assert _read_until_closed(s).startswith(b"HTTP/1.1 408")


def test_headers_over_64_kb_are_refused_by_either_protocol(in_process):
    """h11 was told the limit; httptools (what uvicorn picks where installed) had none."""
    port, _ = in_process
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000)
        answer = _read_until_closed(s)
    assert answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:80]   # h11 itself answers 400


def test_a_stalled_body_gets_a_408(in_process):
    port, k = in_process
    head, body = _stalled_body_answer(port, k["write_keys"]["web"], wait_s=30)
    assert _is_body_timeout(head, body), (head, body)
