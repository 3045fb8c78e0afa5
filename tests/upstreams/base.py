"""The common half of every loopback provider server: requests, replies, faults.

Each protocol (OpenAI, Anthropic, Gemini, Cohere) subclasses ``UpstreamServer`` and
answers in ``handle``; the base records every request, checks the key the test set, and
plays scripted faults first (a status with headers and a body in the provider's own error
shape, a stall past the client's timeout, a stream cut mid-way).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """An answer: a JSON body, or server-sent events / lines streamed one by one."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Streamed pieces (already framed: ``b"data: {...}\n\n"`` or JSON lines).
    stream: Iterable[bytes] | None = None
    content_type: str = "application/json"


@dataclass
class Fault:
    """A scripted misbehaviour for the next request(s)."""

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (longer than the client's timeout = a timeout).
    stall: float = 0.0
    times: int = 1


class UpstreamServer:
    """A threaded loopback HTTP server with request recording and scripted faults."""

    #: The header and scheme the protocol carries its key in: ("authorization", "Bearer ").
    key_header: tuple[str, str] = ("authorization", "Bearer ")

    def __init__(self, *, key: str | None = "test-key") -> None:
        self.key = key
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        #: Seconds between streamed pieces (0: as fast as possible).
        self.stream_delay = 0.0
        #: Cut a stream after this many pieces (a lost connection mid-answer).
        self.cut_stream_after: int | None = None
        #: The port to listen on (0: any free one).
        self.port = 0

    # -- what a protocol implements -----------------------------------------------------

    def handle(self, seen: Seen) -> Reply:
        """The protocol's answer to a request that passed the key check."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        """The protocol's error document."""
        return {"error": {"message": message, "type": "error", "code": None}}

    def key_of(self, seen: Seen) -> str | None:
        """The key a request carries."""
        name, prefix = self.key_header
        value = seen.headers.get(name)
        if value is None:
            return None
        return value[len(prefix) :] if value.startswith(prefix) else value

    # -- scripting ------------------------------------------------------------------------

    def fail(
        self,
        status: int = 500,
        *,
        message: str = "scripted failure",
        headers: dict[str, str] | None = None,
        times: int = 1,
        stall: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (after ``stall`` seconds)."""
        with self._lock:
            self.faults.append(
                Fault(status, self.error_body(status, message), headers or {}, stall, times)
            )

    def requests(self, path_part: str = "") -> list[Seen]:
        """The requests received so far whose path contains ``path_part``."""
        with self._lock:
            return [s for s in self.seen if path_part in s.path]

    # -- serving --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self.faults.pop(0)
            return fault

    def _dispatch(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
        fault = self._next_fault()
        if fault is not None:
            if fault.stall:
                time.sleep(fault.stall)
            return Reply(fault.status, fault.body, dict(fault.headers))
        if self.key is not None and self.key_of(seen) != self.key:
            return Reply(401, self.error_body(401, "Invalid API key provided."))
        return self.handle(seen)

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and
                # the client's delayed ACK hold the body back 40 ms on every keep-alive request.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = server._dispatch(seen)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.stream is None:
                    data = b"" if reply.body is None else json.dumps(reply.body).encode()
                    self.send_header("content-type", reply.content_type)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_header("content-type", reply.content_type)
                self.send_header("transfer-encoding", "chunked")
                self.send_header("connection", "close")
                self.end_headers()
                for i, piece in enumerate(reply.stream):
                    if server.cut_stream_after is not None and i >= server.cut_stream_after:
                        self.close_connection = True
                        return  # no terminating chunk: the client sees the body end early
                    if server.stream_delay:
                        time.sleep(server.stream_delay)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

            do_GET = do_POST = do_DELETE = _serve

        self._httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a cancelled stream, a timeout) is no error here."""

    #: The listen backlog: the default 5 resets connections a load test opens at once.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


S = TypeVar("S", bound=UpstreamServer)


@contextmanager
def running(server: S) -> Iterator[S]:
    """Start a loopback server for the block, stop it after."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"{head}data: {payload}\n\n".encode()


def words(text: str) -> list[str]:
    """A reply cut into the pieces a stream sends (words with their leading space)."""
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return out
