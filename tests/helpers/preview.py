"""A real preview server on loopback, fed redacted frames of the sample clip (real moving faces,
redacted at their true boxes) from a thread of its own; a client for it, a reader of its MJPEG
parts, and the check that no test prints the token."""

from __future__ import annotations

import http.client
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
import pytest

from edge.config import PreviewConfig, RedactConfig
from edge.detect.detections import Detections
from edge.frames import RawFrame, RedactedFrame
from edge.redact import Redactor
from edge.sample import Box, sample_frames
from edge.sinks.preview import PreviewServer, TlsFiles

TOKEN = secrets.token_urlsafe(32)
CLIP_FRAMES = 24
WIDTH, HEIGHT = 1280, 720


@cache
def clip() -> list[tuple[np.ndarray, list[Box]]]:
    """The source frames, unredacted, with their true face boxes (x, y, w, h)."""
    return list(sample_frames(WIDTH, HEIGHT, CLIP_FRAMES))


def source(index: int) -> tuple[np.ndarray, list[Box]]:
    """The unredacted source of the frame the feeder offered as `index`."""
    return clip()[index % CLIP_FRAMES]


def redacted(index: int) -> RedactedFrame:
    pixels, boxes = source(index)
    xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32)
    faces = Detections(xyxy, np.ones(len(boxes), np.float32))
    return Redactor(RedactConfig()).redact(RawFrame(pixels.copy(), index=index), faces)


class Feeder:
    """Offers frame 0, 1, 2, ... (the clip, looped) at about `rate` a second, like a camera."""

    def __init__(self, server: PreviewServer, rate: float = 40.0) -> None:
        self.server, self.rate = server, rate
        self.offered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-feeder", daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.server.offer(redacted(self.offered))
            self.offered += 1
            self._stop.wait(1.0 / self.rate)  # pacing, like a camera; nothing is asserted on it


def _status() -> bytes:
    return b'{"state": "running", "frames_in": 1}\n'


@contextmanager
def running(
    cfg: PreviewConfig | None = None,
    *,
    token: str | None = TOKEN,
    tls: TlsFiles | None = None,
    status: Callable[[], bytes] = _status,
    feed: bool = True,
) -> Iterator[PreviewServer]:
    server = PreviewServer(
        cfg or PreviewConfig(fps=20), "127.0.0.1", 0, token=token, tls=tls, status=status
    )
    server.start()
    feeder = Feeder(server).start() if feed else None
    try:
        yield server
    finally:
        if feeder is not None:
            feeder.stop()
        server.close()


def read_part(response: http.client.HTTPResponse, boundary: str) -> tuple[dict[str, str], bytes]:
    """One part of a multipart/x-mixed-replace body: its headers and its bytes."""
    line = response.readline()
    assert line == f"--{boundary}\r\n".encode(), line[:80]
    headers: dict[str, str] = {}
    while (line := response.readline().strip()) != b"":
        name, _, value = line.decode("ascii").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = response.read(int(headers["content-length"]))
    assert response.read(2) == b"\r\n"
    return headers, body


def boundary_of(response: http.client.HTTPResponse) -> str:
    kind, _, rest = response.getheader("Content-Type", "").partition(";")
    assert kind.strip() == "multipart/x-mixed-replace"
    name, _, value = rest.strip().partition("=")
    assert name == "boundary" and value
    return value


COOKIE = {"Cookie": f"veil_preview={TOKEN}"}


@pytest.fixture(autouse=True)
def token_never_printed(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Whatever a test does to the server, neither it nor anything it runs prints the token.
    Autouse in every module that imports it."""
    yield
    out, err = capfd.readouterr()
    assert TOKEN not in out + err


def request(
    server: PreviewServer,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    source_ip: str | None = None,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    host, port = server.address
    conn = http.client.HTTPConnection(
        host, port, timeout=10, source_address=(source_ip, 0) if source_ip else None
    )
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def open_stream(
    server: PreviewServer, headers: dict[str, str] = COOKIE
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    conn.request("GET", "/stream.mjpg", headers=headers)
    return conn, conn.getresponse()


def hang_up(conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
    """Close the stream for real: the response holds the socket open as long as it is open."""
    response.close()
    conn.close()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
