"""The preview as a Tap: a threading HTTP server on the configured address, fed the redacted
frames, optionally over TLS.

One thread per connection, each with a deadline for every request and a socket timeout for
every reply (see handler.py), so a stalled or dripping client's thread ends on its own; TLS
handshakes run there too, never in the accept loop, so a client that handshakes slowly holds up
nobody. Connections are admitted in the accept loop by their slots (slots.py): those that have
not yet shown the token are bounded apart from those being served. `close` cuts every
connection and returns in bounded time. The server never prints: not a request, not an error,
not a client's address.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from edge.config import PreviewConfig, is_loopback
from edge.frames import RedactedFrame
from edge.sinks.base import require_redacted
from edge.sinks.preview.access import Gate
from edge.sinks.preview.feed import JpegFeed
from edge.sinks.preview.handler import Handler, Shared
from edge.sinks.preview.hosts import HostCheck
from edge.sinks.preview.tls import TlsFiles

CLOSE_S = 2.0  # close() waits this long at most for the server's threads


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Connections the kernel completes before the accept loop takes them: a burst is admitted
    # or hung up on by the slots, not left to wait for a SYN retransmission.
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: Shared, tls: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        super().__init__((host, port), Handler)
        if tls is not None:
            try:
                self.socket = tls.wrap_socket(
                    self.socket, server_side=True, do_handshake_on_connect=False
                )
            except BaseException:
                self.server_close()
                raise

    def server_bind(self) -> None:
        # Not HTTPServer's: that one looks the host up in the DNS (slow, and says where we are).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        # In the accept loop: a flood of connections is turned away before it costs a thread.
        slots = self.app.slots
        if not slots.arrive(request, time.monotonic()):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # starts its thread
        except BaseException:
            slots.leave(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        slots = self.app.slots
        try:
            if slots.started(request, threading.current_thread()):
                super().process_request_thread(request, client_address)
            else:
                self.shutdown_request(request)
        finally:
            slots.leave(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the default prints a traceback and the client's address


def _tls_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context


class PreviewServer:
    """The preview as a Tap: `offer` hands it each redacted frame, `start` opens the port."""

    def __init__(
        self,
        cfg: PreviewConfig,
        host: str,
        port: int,
        *,
        token: str | None,
        tls: TlsFiles | None,
        status: Callable[[], bytes],
    ) -> None:
        if token is None and not is_loopback(host):
            raise ValueError(f"a preview on {host} needs a token: only loopback may go without")
        self._host, self._port = host, port
        self._tls = tls
        gate = Gate(token, tls=tls is not None)
        self._app = Shared(cfg, gate, HostCheck(host), JpegFeed(cfg), status)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Bind and serve on a daemon thread. OSError when the address cannot be bound."""
        if self._server is not None:
            return
        context = _tls_context(self._tls) if self._tls is not None else None
        self._server = _Server(self._host, self._port, self._app, context)
        self._app.feed.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="veil-preview",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        if self._server is None:
            return self._host, self._port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def offer(self, frame: RedactedFrame) -> None:
        self._app.feed.offer(require_redacted(frame))

    def stats(self) -> dict[str, int]:
        app = self._app
        return {
            "clients": app.feed.watchers,
            "served": app.served,
            # Connections and requests: no token, a foreign Host, no slot left.
            "refused": app.gate.refused + app.misdirected + app.slots.turned_away + app.slots.busy,
            "limited": app.gate.limited,
            "encoded": app.feed.encoded,
        }

    def close(self) -> None:
        """Stop serving and end every connection, within about CLOSE_S."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + CLOSE_S
        self._app.closing.set()
        self._app.feed.close()
        server = self._server
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()  # returns within one poll interval
        server.server_close()
        threads = self._app.slots.close_all()
        if self._thread is not None:
            threads.append(self._thread)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
