"""The live preview, served for real on loopback and read over real HTTP: closed without the
token, only three routes, the picture redacted, scaled and fresh for every viewer however slow
another is, nothing printed, and a bounded shutdown. (The token file, the gate's memory and TLS:
test_preview_access.py.)"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from edge.config import PreviewConfig, RedactConfig
from edge.evaluate.protection import is_protected
from edge.frames import RawFrame
from edge.redact import Redactor
from edge.sinks.preview import PreviewServer
from edge.sinks.preview import slots as preview_slots
from edge.sinks.preview.page import page
from helpers.preview import (
    COOKIE,
    TOKEN,
    boundary_of,
    hang_up,
    open_stream,
    read_part,
    request,
    running,
    source,
    token_never_printed,  # noqa: F401 (an autouse fixture)
    wait_until,
)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


# --- closed by default ----------------------------------------------------------------------


def test_every_route_is_closed_without_the_token() -> None:
    with running() as server:
        for path in ("/", "/stream.mjpg", "/status.json", "/nope", "/?token=", "/?x=1"):
            status, response, body = request(server, path)
            assert status == 401, path
            assert response.getheader("WWW-Authenticate", "").startswith("Bearer")
            assert b"\xff\xd8" not in body and len(body) < 100
            for name, value in SECURITY_HEADERS.items():
                assert response.getheader(name) == value
        assert request(server, "/", method="HEAD")[0] == 401
        assert server.stats()["served"] == 0


@pytest.mark.parametrize(
    "headers, path",
    [
        ({"Cookie": "veil_preview=" + "A" * len(TOKEN)}, "/status.json"),
        ({"Cookie": f"veil_preview={TOKEN[:-1]}"}, "/status.json"),
        ({"Cookie": f"other={TOKEN}"}, "/status.json"),  # the right token, the wrong cookie
        ({"Authorization": "Bearer " + "A" * len(TOKEN)}, "/stream.mjpg"),
        ({"Authorization": f"Basic {TOKEN}"}, "/stream.mjpg"),
        ({}, f"/?token={TOKEN}x"),
        ({}, "/?token=" + "%C3%A9" * 10),
    ],
    ids=["cookie", "cookie-short", "cookie-name", "bearer", "basic", "query", "query-utf8"],
)  # the ids, not the values: a test's name never shows the token
def test_a_wrong_token_is_refused(headers: dict[str, str], path: str) -> None:
    with running() as server:
        status, _, body = request(server, path, headers)
        assert status == 401 and b"\xff\xd8" not in body


def test_the_token_in_the_address_becomes_a_cookie() -> None:
    with running() as server:
        status, response, body = request(server, f"/?token={TOKEN}")
        assert status == 303 and body == b""
        assert response.getheader("Location") == "/"
        cookie = response.getheader("Set-Cookie", "")
        assert cookie.startswith(f"veil_preview={TOKEN};")
        attributes = {a.strip() for a in cookie.split(";")[1:]}
        assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= attributes
        assert "Secure" not in attributes  # plain HTTP: a Secure cookie would never come back

        status, response, body = request(server, "/", COOKIE)
        assert status == 200 and body == page().body
        assert response.getheader("Content-Type") == "text/html; charset=utf-8"
        assert response.getheader("Content-Security-Policy") == page().csp
        head_status, head, head_body = request(server, "/", COOKIE, method="HEAD")
        assert head_status == 200 and head_body == b""
        assert head.getheader("Content-Length") == str(len(body))


def test_the_page_is_self_contained_and_its_policy_allows_only_itself() -> None:
    html = page().body
    # Nothing from anywhere else: every src and href is one of our own routes.
    links = re.findall(rb"""(?:src|href)\s*=\s*["']?([^"' >]+)""", html, re.I)
    assert set(links) == {b"/stream.mjpg", b"/stream.mjpg?t="}  # the second: its retry
    assert not re.search(rb"https?://|@import|url\(", html, re.I)
    assert b'name="viewport"' in html
    for key in ("frames_in", "frames_out", "dropped", "obscured", "latency_ms", "camera_fps"):
        assert key.encode() in html  # the status keys the page reads
    csp = dict(part.strip().split(" ", 1) for part in page().csp.split(";"))
    assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert csp["img-src"] == csp["connect-src"] == "'self'"
    assert "'unsafe-inline'" not in page().csp
    for tag in (b"script", b"style"):
        blocks = re.findall(rb"<%s>(.*?)</%s>" % (tag, tag), html, re.S)
        assert len(blocks) == 1
        digest = hashlib.sha256(blocks[0]).digest()
        assert csp[f"{tag.decode()}-src"] == f"'sha256-{base64.b64encode(digest).decode()}'"


def test_status_and_bearer() -> None:
    body = b'{"state": "degraded", "frames_in": 42}\n'
    with running(status=lambda: body) as server:
        bearers = [{"Authorization": f"Bearer {TOKEN}"}, {"authorization": f"bearer {TOKEN}"}]
        for headers in [COOKIE, *bearers]:
            status, response, got = request(server, "/status.json", headers)
            assert status == 200 and got == body
            assert response.getheader("Content-Type") == "application/json"
            assert response.getheader("Cache-Control") == "no-store"
        assert request(server, f"/status.json?token={TOKEN}")[1].status == 200  # no redirect


def test_a_failing_status_is_a_500_not_a_dead_server() -> None:
    def broken() -> bytes:
        raise RuntimeError("no status")

    with running(status=broken) as server:
        assert request(server, "/status.json", COOKIE)[0] == 500
        assert request(server, "/", COOKIE)[0] == 200


@pytest.mark.parametrize(
    "path",
    ["/../etc/passwd", "/edge", "/page.html", "/edge/sinks/preview/page.html", "/index.html",
     "//etc/passwd", "/stream.mjpg/", "/status.json/../", "/favicon.ico", "/./"],
)  # fmt: skip
def test_nothing_else_exists(path: str) -> None:
    with running() as server:
        status, _, body = request(server, path, COOKIE)
        assert status == 404 and b"root:" not in body and b"<" not in body


def test_only_get_and_head_and_the_gate_comes_first() -> None:
    with running() as server:
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            assert request(server, "/", method=method)[0] == 401
            status, response, _ = request(server, "/", COOKIE, method=method)
            assert status == 405 and "GET" in response.getheader("Allow", "")
        assert request(server, "/stream.mjpg", COOKIE, method="HEAD")[0] == 405
        assert request(server, "/status.json", COOKIE, method="HEAD")[0] == 405
        assert request(server, "/", COOKIE, method="BREW")[0] == 501  # not a method at all


# --- the picture -------------------------------------------------------------------------------


def test_the_stream_is_redacted_scaled_and_fresh() -> None:
    with running() as server:
        conn, response = open_stream(server)
        try:
            assert response.status == 200
            assert response.getheader("Cache-Control") == "no-store"
            boundary = boundary_of(response)
            parts = [read_part(response, boundary) for _ in range(8)]
        finally:
            hang_up(conn, response)
        wait_until(lambda: server.stats()["served"] >= 8)  # counted once each write returns
    indices = [int(headers["x-veil-frame"]) for headers, _ in parts]
    assert indices == sorted(set(indices))
    leaks_caught = 0
    for (headers, jpeg), index in zip(parts, indices, strict=True):
        assert headers["content-type"] == "image/jpeg"
        shown = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert shown is not None and max(shown.shape[:2]) == 640 and shown.shape[:2] == (360, 640)
        pixels, boxes = source(index)
        before = cv2.resize(pixels, (640, 360), interpolation=cv2.INTER_AREA)
        scaled = [(x / 2, y / 2, w / 2, h / 2) for x, y, w, h in boxes]
        assert all(is_protected(before, shown, box) for box in scaled), index
        # The control: the same measure on the unredacted picture, sent the same way, does find
        # the faces, so the check above could have failed.
        _, plain = cv2.imencode(".jpg", before, [cv2.IMWRITE_JPEG_QUALITY, 70])
        leaked = cv2.imdecode(plain, cv2.IMREAD_COLOR)
        leaks_caught += sum(not is_protected(before, leaked, box) for box in scaled)
    assert leaks_caught >= 2 * len(parts)


def test_the_picture_is_only_encoded_for_a_viewer_and_never_enlarged() -> None:
    with running() as server:
        feed = server._app.feed
        wait_until(lambda: feed.offered >= 20)  # half a second of camera: ten encoder ticks
        assert server.stats()["encoded"] == 0  # nobody was watching
    small = cv2.resize(source(0)[0], (320, 180), interpolation=cv2.INTER_AREA)
    frame = Redactor(RedactConfig()).obscure(RawFrame(small, index=5))
    with running(feed=False) as server:
        server.offer(frame)
        conn, response = open_stream(server)
        try:
            headers, jpeg = read_part(response, boundary_of(response))
        finally:
            hang_up(conn, response)
        shown = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert shown.shape[:2] == (180, 320) and headers["x-veil-frame"] == "5"
        assert server.stats()["encoded"] == 1  # one frame offered, encoded once


def test_a_slow_viewer_skips_frames_and_holds_up_nobody() -> None:
    cfg = PreviewConfig(fps=20, long_side=160, quality=60)
    seconds = 4.0
    with running(cfg) as server:
        normal: list[int] = []

        def watch() -> None:
            conn, response = open_stream(server)
            boundary = boundary_of(response)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                normal.append(int(read_part(response, boundary)[0]["x-veil-frame"]))
            hang_up(conn, response)

        reader = threading.Thread(target=watch)
        reader.start()
        slow = socket.socket()  # reads 1 KB every 0.1 s, into a small receive buffer
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(server.address)
        ask = (
            f"GET /stream.mjpg HTTP/1.1\r\nHost: localhost\r\nCookie: veil_preview={TOKEN}\r\n\r\n"
        )
        slow.sendall(ask.encode())
        received = b""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            received += slow.recv(1024)
            time.sleep(0.1)
        slow.close()
        reader.join(10)
    got = [int(n) for n in re.findall(rb"\r\nX-Veil-Frame: (\d+)\r\n", received)]
    assert len(got) >= 3 and got == sorted(set(got))
    # The viewer beside it was not held up: it had nearly every picture, in order.
    assert len(normal) >= 0.5 * cfg.fps * seconds and normal == sorted(set(normal))
    assert len(normal) >= 3 * len(got)
    # The slow one skipped pictures (others were published between two of its own)...
    between = [sum(a < n < b for n in normal) for a, b in zip(got, got[1:], strict=False)]
    assert max(between) >= 3
    # ...and was not handed a backlog: a queue would have reached only normal[len(got)] by now.
    assert got[-1] > normal[len(normal) // 2]


def test_one_viewer_too_many_is_turned_away() -> None:
    with running(PreviewConfig(fps=20, max_clients=2)) as server:
        streams = [open_stream(server) for _ in range(2)]
        for _, response in streams:
            assert response.status == 200
            read_part(response, boundary_of(response))
        wait_until(lambda: server.stats()["clients"] == 2)
        status, response, body = request(server, "/stream.mjpg", COOKIE)
        assert status == 503 and b"\xff\xd8" not in body and response.getheader("Retry-After")
        assert request(server, "/status.json", COOKIE)[0] == 200  # the page still works
        hang_up(*streams[0])
        # The slot comes back once the server notices the viewer left (its next write fails).
        deadline = time.monotonic() + 5
        while (again := open_stream(server))[1].status != 200:
            hang_up(*again)
            assert time.monotonic() < deadline
            time.sleep(0.05)
        hang_up(*again)
        hang_up(*streams[1])


def test_only_redacted_frames_are_taken() -> None:
    with running(feed=False) as server:
        pixels = np.zeros((48, 64, 3), np.uint8)
        for bad in (RawFrame(pixels, index=0), pixels, None):
            with pytest.raises(TypeError, match="RedactedFrame"):
                server.offer(bad)  # type: ignore[arg-type]
        assert server._app.feed.offered == 0


# --- nothing printed, bounded shutdown -----------------------------------------------------------


def test_broken_requests_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with running() as server:
        host, port = server.address
        for raw in (
            f"GET /?token={TOKEN} HTTP/9.9\r\n\r\n",  # no such version
            f"GET /?token={TOKEN}{'a' * 70000} HTTP/1.1\r\n\r\n",  # a request line too long
            f"BREW /?token={TOKEN} HTTP/1.1\r\nHost: localhost\r\n\r\n",  # no such method
            f"GET /?token={TOKEN} HTTP/1.1\r\nHost: localhost\r\n",  # hangs up mid-request
            f"GET /stream.mjpg?token={TOKEN} HTTP/1.1\r\n\r\n",  # hangs up mid-stream
            "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # TLS to the plain port
        ):
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(raw.encode("latin-1"))
                sock.shutdown(socket.SHUT_WR)
                answer = sock.recv(4096)
                if answer.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")):
                    assert TOKEN.encode() not in answer and b"<" not in answer  # no echo
        assert request(server, "/", COOKIE)[0] == 200
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_close_is_prompt_with_viewers_connected() -> None:
    with running() as server:
        conn, response = open_stream(server)
        read_part(response, boundary_of(response))
        idle = socket.create_connection(server.address)  # connected, never sends a request
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 3.0
        with pytest.raises((OSError, http.client.HTTPException, AssertionError)):
            for _ in range(100):  # the stream ends: no more parts after the buffered ones
                read_part(response, boundary_of(response))
        hang_up(conn, response)
        idle.close()
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=1).close()


def test_a_flood_of_connections_costs_no_more_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preview_slots, "MAX_WAITING", 4)
    monkeypatch.setattr(preview_slots, "GRACE_S", 60.0)  # all four count as young
    with running(feed=False) as server:
        idle = [socket.create_connection(server.address, timeout=5) for _ in range(4)]
        for sock in idle:  # each is served (a thread waits for its request), then refused
            sock.sendall(b"GET /status.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 401"
        threads = threading.active_count()
        with socket.create_connection(server.address, timeout=5) as extra:
            assert extra.recv(100) == b""  # hung up on at once, no thread started for it
        assert threading.active_count() <= threads
        # Once they have waited GRACE_S, a newcomer takes the place of the oldest.
        monkeypatch.setattr(preview_slots, "GRACE_S", 0.0)
        assert request(server, "/status.json", COOKIE)[0] == 200
        while idle[0].recv(4096):  # the rest of its 401, then the end (a timeout if not cut)
            pass
        for sock in idle:
            sock.close()


def test_a_port_in_use_is_an_os_error() -> None:
    with running(feed=False) as first:
        second = PreviewServer(
            PreviewConfig(), *first.address, token=TOKEN, tls=None, status=lambda: b"{}"
        )
        with pytest.raises(OSError):
            second.start()
        second.close()


def test_an_ipv6_loopback_bind() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    server = PreviewServer(PreviewConfig(), "::1", 0, token=TOKEN, tls=None, status=lambda: b"{}")
    try:
        server.start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        host, port = server.address
        assert host == "::1" and port > 0
        conn = http.client.HTTPConnection("::1", port, timeout=5)
        conn.request("GET", "/status.json", headers=COOKIE)
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.close()
