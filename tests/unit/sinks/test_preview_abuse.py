"""The preview attacked on loopback, for real: requests dripped a byte at a time (plain, over TLS,
and the TLS handshake itself) are cut at their deadline; more dripping connections than there
are slots leave a viewer's picture running and let a new viewer in within seconds; and a page
whose name was rebound to 127.0.0.1 (any Host but a loopback one) is refused."""

from __future__ import annotations

import http.client
import math
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.config import PreviewConfig
from edge.sinks.preview import PreviewServer, load_or_create_cert
from edge.sinks.preview import handler as preview_handler
from edge.sinks.preview import slots as preview_slots
from edge.sinks.preview.hosts import HostCheck, host_name
from helpers.preview import (
    COOKIE,
    TOKEN,
    boundary_of,
    hang_up,
    open_stream,
    read_part,
    request,
    running,
    token_never_printed,  # noqa: F401 (an autouse fixture)
)

DEADLINE_S = 1.5  # the request deadline these tests give the server, to be quick
# A request that never ends, so only a deadline can end it.
ENDLESS = b"GET /status.json HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 4096


def _drip(sock: socket.socket, data: bytes, every: float, limit: float) -> tuple[float, bytes]:
    """Send `data` one byte every `every` seconds until the server hangs up or `limit` passes.
    Returns (seconds until it hung up, or inf; what it sent back before)."""
    started, answer = time.monotonic(), b""
    sock.settimeout(every)
    for byte in data:
        if time.monotonic() - started > limit:
            return math.inf, answer
        try:
            sock.sendall(bytes([byte]))
            got = sock.recv(4096)  # waits `every` for an answer, or for the server to hang up
        except TimeoutError:
            continue  # nothing back (or only TLS session tickets): the next byte
        except OSError:  # reset, or a TLS alert: hung up either way
            break
        if not got:
            break
        answer += got
    else:
        return math.inf, answer
    return time.monotonic() - started, answer


def _client_hello() -> bytes:
    """The bytes a TLS client opens with, made by the ssl module itself."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("case", ["request", "next-request", "tls-handshake", "tls-request"])
def test_a_dripping_request_is_cut_at_its_deadline(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview_handler, "REQUEST_S", DEADLINE_S, raising=False)
    tls = load_or_create_cert(tmp_path) if case.startswith("tls") else None
    with running(tls=tls, feed=False) as server:
        plain = socket.create_connection(server.address, timeout=5)
        sock: socket.socket = plain
        data = ENDLESS
        if case == "tls-handshake":
            data = _client_hello()
        elif case == "tls-request":
            context = ssl.create_default_context(cafile=str(tls.cert) if tls else None)
            sock = context.wrap_socket(plain, server_hostname="localhost")
        elif case == "next-request":  # a first request served whole, the next one dripped
            conn = http.client.HTTPConnection(*server.address, timeout=5)
            conn.request("GET", "/status.json", headers=COOKIE)
            assert conn.getresponse().read() and conn.sock is not None
            sock = conn.sock
        assert len(data) > 4 * DEADLINE_S / 0.2  # more than the deadline lets through
        took, answer = _drip(sock, data, every=0.2, limit=4 * DEADLINE_S)
        sock.close()
        plain.close()
    assert b"HTTP/" not in answer  # never taken for a whole request
    assert DEADLINE_S - 0.3 <= took <= DEADLINE_S + 1.0, took  # cut by the deadline, at it


def _closed(sock: socket.socket) -> bool:
    """The server hung up (it never sends a dripping connection anything)."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(1) == b""
    except OSError:
        return True


class _Slowloris:
    """`count` connections, each sent the next byte of ENDLESS every second; one the server
    hangs up on is replaced by a new one at the next round, as the attack's tools do."""

    def __init__(self, server: PreviewServer, count: int) -> None:
        self.address = server.address
        self.socks: dict[socket.socket, int] = {}  # connection -> bytes sent on it
        self.hung_up = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(count,), daemon=True)

    def _run(self, count: int) -> None:
        while True:
            for sock in [sock for sock in self.socks if _closed(sock)]:
                self.hung_up += 1
                del self.socks[sock]
                sock.close()
            while len(self.socks) < count and not self._stop.is_set():
                try:
                    self.socks[socket.create_connection(self.address, timeout=2)] = 0
                except OSError:
                    break
            for sock, sent in self.socks.items():
                try:
                    sock.send(ENDLESS[sent : sent + 1])
                    self.socks[sock] = sent + 1
                except OSError:
                    pass
            self.rounds += 1
            if self._stop.wait(1.0):
                return

    def on_going(self) -> bool:
        return self._thread.is_alive()

    @contextmanager
    def on(self) -> Iterator[_Slowloris]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)
            for sock in self.socks:
                sock.close()


def _within(seconds: float, attempt: Callable[[], bool]) -> float:
    """Retry `attempt` (a client that was hung up on tries again) until it succeeds; the time."""
    started = time.monotonic()
    while True:
        try:
            if attempt():
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() - started < seconds, "locked out"
        time.sleep(0.1)


def test_more_dripping_connections_than_slots_cannot_keep_a_viewer_out() -> None:
    attackers = 100  # more than every slot there is, and than the 64 connections of old
    with running(PreviewConfig(fps=20, max_clients=2)) as server:
        watcher, watched = open_stream(server)
        boundary = boundary_of(watched)
        before = int(read_part(watched, boundary)[0]["x-veil-frame"])
        with _Slowloris(server, attackers).on() as attack:
            # The excess is hung up on at once, and those left hold only the waiting slots.
            deadline = time.monotonic() + 5
            while attack.rounds < 2 or attack.hung_up < attackers - preview_slots.MAX_WAITING:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert server._app.slots.waiting <= preview_slots.MAX_WAITING

            def watch() -> bool:
                conn, response = open_stream(server)
                try:
                    return response.status == 200 and bool(
                        read_part(response, boundary_of(response))[1]
                    )
                finally:
                    hang_up(conn, response)

            took = _within(5.0, watch)  # a new viewer, with the token, gets the picture
            assert _within(5.0, lambda: request(server, "/status.json", COOKIE)[0] == 200) < 5
            # The viewer who was watching before the attack never stopped getting pictures.
            for _ in range(5):
                after = int(read_part(watched, boundary)[0]["x-veil-frame"])
            assert after > before
            assert attack.rounds >= 2 and attack.on_going()  # it went on all along
        hang_up(watcher, watched)
    assert took < 5.0


def test_waiting_slots_are_cut_oldest_first_and_never_the_young(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preview_slots, "MAX_WAITING", 2)
    monkeypatch.setattr(preview_slots, "MAX_SERVED", 1)
    monkeypatch.setattr(preview_slots, "GRACE_S", 1.0)
    slots = preview_slots.Slots()
    pairs = [socket.socketpair() for _ in range(5)]
    ours = [mine for mine, _ in pairs]
    try:
        assert slots.arrive(ours[0], now=0.0) and slots.arrive(ours[1], now=0.5)
        assert not slots.arrive(ours[2], now=0.9)  # both young: the newcomer is turned away
        assert slots.arrive(ours[2], now=1.0)  # ours[0] has waited GRACE_S: it is cut
        assert pairs[0][1].recv(1) == b""
        assert not slots.serve(ours[0])  # cut while its request was read: no slot
        assert slots.serve(ours[1])  # it showed the token: it no longer waits
        assert slots.arrive(ours[3], now=1.1)  # so a waiting slot is free again
        assert not slots.serve(ours[2])  # the one served slot is taken: 503, and it ends
        assert slots.busy == 1 and not slots.wait(ours[2], now=1.2)
        # ours[1] was answered; it waits for its next request with a fresh age.
        assert slots.wait(ours[1], now=5.0) and slots.waiting == 2
        # ours[3] had a request refused: that keeps its age (1.1), so it is the one cut.
        assert slots.wait(ours[3], now=5.0)
        assert slots.arrive(ours[4], now=5.5) and pairs[3][1].recv(1) == b""
        assert slots.turned_away == 3
        assert slots.close_all() == [] and not slots.arrive(ours[2], now=9.0)
        assert pairs[1][1].recv(1) == b"" and pairs[4][1].recv(1) == b""
    finally:
        for mine, theirs in pairs:
            mine.close()
            theirs.close()


# --- DNS rebinding: the Host ---------------------------------------------------------------


def _raw(server: PreviewServer, head: str) -> tuple[int, str, bytes]:
    """Send `head` (a request without its final blank line) and read the whole answer."""
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(f"{head}Connection: close\r\n\r\n".encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"multipart/x-mixed-replace" in answer:
                break  # a stream never ends on its own
    top, _, body = answer.partition(b"\r\n\r\n")
    status_line, _, headers = top.decode("latin-1").partition("\r\n")
    return int(status_line.split(" ")[1]), headers, body


FOREIGN = [
    "evil.example", "evil.example:8088", "EVIL.example", "localhost.evil.example",
    "127.0.0.1.nip.io", "evil.localhost", "0.0.0.0", "10.0.0.9:8088", "[::2]", "[fe80::1]:80",
]  # fmt: skip
LOOPBACK = ["localhost", "LOCALHOST:8088", "localhost.", "127.0.0.1", "127.0.0.1:9999", "[::1]:1"]
MALFORMED = [
    [], ["localhost", "localhost"], [""], ["evil example"], ["localhost:80:80"], ["[::1"],
    ["localhost:http"], ["127.0.0.1@evil.example"], ["localhost/x"],
]  # fmt: skip


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "token"])
def test_a_page_rebound_to_loopback_is_refused(token: str | None) -> None:
    auth = f"Cookie: veil_preview={TOKEN}\r\n" if token else ""
    with running(token=token) as server:
        port = server.address[1]
        for path in ("/", "/status.json", "/stream.mjpg", f"/?token={TOKEN}"):
            for host in FOREIGN:
                status, headers, body = _raw(
                    server, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}"
                )
                assert status == 421, (path, host)
                assert "X-Frame-Options: DENY" in headers and "Cache-Control: no-store" in headers
                assert "Content-Security-Policy: default-src 'none'" in headers
                assert b"\xff\xd8" not in body and b"frames" not in body
                assert host.encode().lower() not in body.lower() and TOKEN.encode() not in body
        for host in [*LOOPBACK, f"127.0.0.1:{port}", f"localhost:{port}"]:
            status, _, body = _raw(server, f"GET /status.json HTTP/1.1\r\nHost: {host}\r\n{auth}")
            assert status == 200 and b"frames_in" in body, host
        for hosts in MALFORMED:
            lines = "".join(f"Host: {host}\r\n" for host in hosts)
            assert _raw(server, f"GET /status.json HTTP/1.1\r\n{lines}{auth}")[0] == 400, hosts
        assert _raw(server, f"GET /status.json HTTP/1.0\r\n{auth}")[0] == 400
        # An absolute target names a host of its own: none is taken, ours or not.
        for target in ("http://evil.example/status.json", "http://localhost/status.json"):
            assert _raw(server, f"GET {target} HTTP/1.1\r\nHost: localhost\r\n{auth}")[0] == 400
        assert server.stats()["served"] == 0  # not one picture
        assert server.stats()["refused"] >= 4 * len(FOREIGN) + len(MALFORMED) + 3


def test_off_loopback_any_host_is_answered_and_the_token_guards_it() -> None:
    for bind in ("0.0.0.0", "192.168.1.5", "::"):
        check = HostCheck(bind)
        assert not check.loopback
        for host in ["evil.example", "camera.local:8088", "192.168.1.5:8088", *LOOPBACK]:
            assert check.refusal([host]) is None, (bind, host)
        for hosts in MALFORMED:
            assert check.refusal(hosts) == 400, (bind, hosts)
    for bind in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert HostCheck(bind).refusal(["evil.example"]) == 421
        assert HostCheck(bind).refusal(["[::1]:8088"]) is None
    assert host_name("[0:0::1]:80") == "::1" and host_name("Example.ORG.:1") == "example.org"
    # Only a token may guard a server off loopback: without one it is not even made.
    with pytest.raises(ValueError, match="needs a token"):
        PreviewServer(PreviewConfig(), "0.0.0.0", 0, token=None, tls=None, status=lambda: b"{}")
