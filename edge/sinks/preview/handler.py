"""What the preview answers: every request passes the Host check and the gate before anything
else is looked at, and nothing but the page, the picture and the status exists (no file is ever
served).

A request has REQUEST_S, from the moment the server starts waiting for it, to arrive whole (the
TLS handshake too, for a connection's first): the time limit of each read does not bound a
client that drips a byte now and then, this does. Only a request that passed the gate gets a
served slot (slots.py), so clients without the token never take a viewer's place.

Nothing is printed, ever: the standard handler's request lines would carry a `?token=` to the
terminal and the journal, and its error pages echo parts of the request. A viewer of the
picture is written the newest JPEG whenever it can take one; its kernel send queue is kept to
about two pictures, so a slow viewer skips frames rather than watching them late.
"""

from __future__ import annotations

import io
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol, cast
from urllib.parse import parse_qs

from edge.config import PreviewConfig
from edge.sinks.preview.access import WINDOW_S, Gate, Verdict
from edge.sinks.preview.feed import JpegFeed
from edge.sinks.preview.hosts import HostCheck
from edge.sinks.preview.page import page
from edge.sinks.preview.slots import Slots

CLIENT_TIMEOUT_S = 10.0  # a viewer that takes no data this long is let go
REQUEST_S = 10.0  # a request's line and headers arrive whole within this, however they trickle
# A viewer's kernel send queue is asked for room for this many pictures (Linux doubles it, so
# about two fit): left to autotuning it can hold seconds of video, which a slow viewer would
# watch late instead of skipping; two still keep a link's round trip busy at the page's rates.
QUEUED_PICTURES = 1
_ALWAYS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
_TEXT = "text/plain; charset=utf-8"
_NOTHING = "default-src 'none'; frame-ancestors 'none'"
_ROUTES = ("/", "/stream.mjpg", "/status.json")


@dataclass
class Shared:
    """What the request handlers share."""

    cfg: PreviewConfig
    gate: Gate
    hosts: HostCheck
    feed: JpegFeed
    status: Callable[[], bytes]
    slots: Slots = field(default_factory=Slots)
    boundary: str = field(default_factory=lambda: "veil-" + secrets.token_hex(8))
    closing: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    streams: int = 0
    served: int = 0
    misdirected: int = 0  # refused for their Host or their request target

    def take_stream(self) -> bool:
        with self.lock:
            if self.streams >= self.cfg.max_clients:
                return False
            self.streams += 1
            return True

    def end_stream(self) -> None:
        with self.lock:
            self.streams -= 1

    def count_served(self) -> None:
        with self.lock:
            self.served += 1

    def count_misdirected(self) -> None:
        with self.lock:
            self.misdirected += 1


class _Reader(io.RawIOBase):
    """A socket's reads, each given only what is left of the request's deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self.sock, self.deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def readinto(self, buffer: Any) -> int:
        left = self.left()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(min(left, CLIENT_TIMEOUT_S))
        try:
            return self.sock.recv_into(buffer)
        finally:
            self.sock.settimeout(CLIENT_TIMEOUT_S)  # what the replies are written with


class _HasShared(Protocol):
    app: Shared


def _part(boundary: str, index: int, jpeg: bytes) -> bytes:
    head = (
        f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
        f"X-Veil-Frame: {index}\r\n\r\n"
    )
    return head.encode("ascii") + jpeg + b"\r\n"


class Handler(BaseHTTPRequestHandler):
    server_version = "veil"
    sys_version = ""
    protocol_version = "HTTP/1.1"  # keep-alive: the page's status polls reuse one connection
    timeout = CLIENT_TIMEOUT_S

    # --- silence: the default handler prints request lines and client addresses ------------

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        pass

    def version_string(self) -> str:
        return self.server_version

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def app(self) -> Shared:
        return cast(_HasShared, self.server).app

    def setup(self) -> None:
        super().setup()
        self._reader = _Reader(self.connection, time.monotonic() + REQUEST_S)
        self._first = True
        self.rfile.close()  # the socket's own file: left open, it would keep the socket open
        self.rfile = io.BufferedReader(self._reader)
        if isinstance(self.connection, ssl.SSLSocket):
            # One timeout bounds the whole handshake, not each of its reads.
            self.connection.settimeout(max(0.01, self._reader.left()))
            self.connection.do_handshake()
            self.connection.settimeout(CLIENT_TIMEOUT_S)

    def handle_one_request(self) -> None:
        if not self._first:  # the next request on a kept-alive connection
            if not self.app.slots.wait(self.connection, time.monotonic()):
                self.close_connection = True
                return
            self._reader.deadline = time.monotonic() + REQUEST_S
        self._first = False
        super().handle_one_request()

    def end_headers(self) -> None:
        for name, value in _ALWAYS:
            self.send_header(name, value)
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard handler's own refusals (a malformed request, an unknown method), without
        its HTML page, which would echo parts of the request."""
        self.close_connection = True
        self._reply(code, f"{code} {self.responses.get(code, ('error',))[0]}\n".encode(), [])

    def _reply(
        self,
        code: int,
        body: bytes,
        headers: list[tuple[str, str]],
        content_type: str = _TEXT,
        head: bool = False,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for name, value in headers:
            self.send_header(name, value)
        if not any(name == "Content-Security-Policy" for name, _ in headers):
            self.send_header("Content-Security-Policy", _NOTHING)  # a refusal runs nothing either
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _authorize(self, head: bool) -> Verdict | None:
        app = self.app
        if self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers:
            # A body is never read: this connection ends after the reply, so what follows it
            # is never taken for the next request.
            self.close_connection = True
        if not self.path.startswith("/"):
            # An absolute target (`GET http://other/`) would name a host the Host check never saw.
            app.count_misdirected()
            self.close_connection = True
            self._reply(400, b"the request target must be a path\n", [], head=head)
            return None
        misdirected = app.hosts.refusal(self.headers.get_all("Host"))
        if misdirected is not None:
            app.count_misdirected()
            self.close_connection = True
            text = b"the Host header must name this server\n"
            self._reply(misdirected, text, [], head=head)
            return None
        query = parse_qs(self.path.partition("?")[2])
        verdict = app.gate.allowed(self.headers, query, self.client_address[0])
        if verdict.status == 400:
            self.close_connection = True
            self._reply(400, b"too many tokens in one request\n", [], head=head)
            return None
        if verdict.status == 429:
            self.close_connection = True  # a flood has to connect again for every try
            retry = [("Retry-After", str(round(WINDOW_S)))]
            self._reply(429, b"too many wrong tokens; try again later\n", retry, head=head)
            return None
        if not verdict.ok:
            challenge = [("WWW-Authenticate", 'Bearer realm="veil preview"')]
            self._reply(401, b"a preview token is needed\n", challenge, head=head)
            return None
        if not app.slots.serve(self.connection):
            self.close_connection = True
            retry = [("Retry-After", "5")]
            self._reply(503, b"too many clients; try again later\n", retry, head=head)
            return None
        return verdict

    # --- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def _not_allowed(self) -> None:
        if self._authorize(head=False) is not None:
            self._reply(405, b"method not allowed\n", [("Allow", "GET, HEAD")])

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _route(self, head: bool) -> None:
        verdict = self._authorize(head)
        if verdict is None:
            return
        path = self.path.partition("?")[0]
        if path not in _ROUTES:
            self._reply(404, b"not found\n", [], head=head)
        elif path == "/" and verdict.via_query:
            # The token leaves the address bar (and the history) for a cookie scripts cannot read.
            cookie = [("Location", "/"), ("Set-Cookie", self.app.gate.set_cookie())]
            self._reply(303, b"", cookie, head=head)
        elif path == "/":
            shown = page()
            csp = [("Content-Security-Policy", shown.csp)]
            self._reply(200, shown.body, csp, "text/html; charset=utf-8", head=head)
        elif head:
            self._reply(405, b"method not allowed\n", [("Allow", "GET")], head=True)
        elif path == "/status.json":
            self._status()
        else:
            self._stream()

    def _status(self) -> None:
        try:
            body = self.app.status()
        except Exception:  # the caller's callable: its failure is this reply's, not the server's
            self._reply(500, b"the status is not available\n", [])
            return
        self._reply(200, body, [], "application/json")

    def _stream(self) -> None:
        app = self.app
        if not app.take_stream():
            self._reply(503, b"too many viewers; try again later\n", [("Retry-After", "5")])
            return
        try:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={app.boundary}")
            self.send_header("Connection", "close")
            self.end_headers()
            with app.feed.watching():
                seq = queue = 0
                while not app.closing.is_set():
                    got = app.feed.wait_next(seq, timeout=1.0)
                    if got is None:
                        continue
                    seq, index, jpeg = got
                    if len(jpeg) * QUEUED_PICTURES > queue:  # grows with the picture, never shrinks
                        queue = len(jpeg) * QUEUED_PICTURES
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, queue)
                    self.wfile.write(_part(app.boundary, index, jpeg))
                    app.count_served()
        except (OSError, ValueError):
            pass  # the viewer went away, or stalled past the timeout: it just ends
        finally:
            app.end_stream()
