"""The preview's connections and the slots they hold, so that clients who have not shown the
token can never crowd out those who have.

A connection *waits* from the moment it is accepted, or its last authorized reply ended, until
a request on it passes the gate; it is *served* while that request's reply runs (a picture, for
as long as its viewer watches). The two share nothing: waiting connections have MAX_WAITING
slots, served ones MAX_SERVED (and pictures among those `max_clients`), so any number of
clients without the token leaves every viewer's slot free. A request that fails the gate does
not make its connection younger: it keeps waiting from where it started.

Each waiting connection has a deadline for its whole request (handler.py). When every waiting
slot is taken, a newcomer cuts the connection that has waited longest: a browser sends its
request within a round trip of connecting, so whoever has waited longest is dripping a request
or idle between polls (a browser reconnects without a word), and a newcomer is cut only after
MAX_WAITING more have arrived, long after its request was read. Only when even the oldest is
younger than GRACE_S (a flood, not a hold) is the newcomer hung up on at once instead, before
it costs a thread.
"""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict

MAX_WAITING = 32  # connections that have not yet shown the token (or sent the next request)
MAX_SERVED = 64  # connections whose authorized request is being answered
GRACE_S = 0.1  # a waiting connection this young is never cut for a newcomer


def _cut(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown even for TLS: it wakes a blocked SSL read or write without
        # touching the TLS state the connection's own thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Slots:
    """Every open connection of one server, with its thread. Thread-safe."""

    def __init__(self) -> None:
        # Read here, not as defaults, so a test can lower them for one server.
        self._max_waiting, self._max_served = MAX_WAITING, MAX_SERVED
        # A connection cut for a newcomer holds its thread a moment longer, until it notices.
        self._max_open = 2 * MAX_WAITING + MAX_SERVED
        self._lock = threading.Lock()
        self._waiting: OrderedDict[socket.socket, float] = OrderedDict()  # oldest first
        self._served: set[socket.socket] = set()
        self._open: dict[socket.socket, threading.Thread | None] = {}
        self._closing = False
        self.turned_away = 0  # hung up on at accept, or cut for a newcomer
        self.busy = 0  # authorized, but every served slot was taken

    def arrive(self, sock: socket.socket, now: float) -> bool:
        """A connection just accepted. False: hang up on it, start no thread."""
        with self._lock:
            if self._closing or len(self._open) >= self._max_open or not self._make_room(now):
                self.turned_away += 1
                return False
            self._waiting[sock] = now
            self._open[sock] = None
            return True

    def started(self, sock: socket.socket, thread: threading.Thread) -> bool:
        """The connection's thread runs. False: the server is closing, end it now."""
        with self._lock:
            if sock in self._open:
                self._open[sock] = thread
            return not self._closing

    def serve(self, sock: socket.socket) -> bool:
        """A request on `sock` passed the gate. False: no served slot (or it was cut meanwhile);
        the connection should answer 503 and end."""
        with self._lock:
            if self._waiting.pop(sock, None) is None:
                return False  # cut for a newcomer while its request was read
            if len(self._served) >= self._max_served:
                self.busy += 1
                return False
            self._served.add(sock)
            return True

    def wait(self, sock: socket.socket, now: float) -> bool:
        """`sock` is about to read its next request. False: it has no waiting slot, end it."""
        with self._lock:
            if sock in self._waiting:
                return True  # its last request was refused: it keeps its place in the line
            if sock not in self._served or self._closing:
                return False
            self._served.discard(sock)
            if not self._make_room(now):
                self.turned_away += 1
                return False
            self._waiting[sock] = now
            return True

    def leave(self, sock: socket.socket) -> None:
        with self._lock:
            self._waiting.pop(sock, None)
            self._served.discard(sock)
            self._open.pop(sock, None)

    def close_all(self) -> list[threading.Thread]:
        """Cut every connection, so threads blocked reading or writing return now; take no
        more. Returns their threads, to join."""
        with self._lock:
            self._closing = True
            clients = list(self._open.items())
        for sock, _ in clients:
            _cut(sock)
        return [thread for _, thread in clients if thread is not None]

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _make_room(self, now: float) -> bool:
        if len(self._waiting) < self._max_waiting:
            return True
        oldest, since = next(iter(self._waiting.items()))
        if now - since < GRACE_S:  # read here, so a test can change it
            return False
        del self._waiting[oldest]
        _cut(oldest)
        self.turned_away += 1
        return True
