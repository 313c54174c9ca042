"""Live sources against real servers on 127.0.0.1: GStreamer's RTSP server (H.264, basic auth;
tests/servers/rtsp_server.py, needs `bash tests/system-packages.sh`), HTTP MJPEG and MPEG-TS
servers in a thread, real decoding. Credentials never reach a label, an error or a log line.
Loss, stall and reconnection are real: the server is killed, stopped (SIGSTOP) or goes quiet."""

from __future__ import annotations

import http.server
import io
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from edge.capture.live import LIVE_TIME_BASE, RunClock, SourceLost
from edge.capture.network import NetworkSource
from edge.capture.opencv_camera import GStreamerSource, V4L2Source, has_gstreamer
from edge.capture.spec import OpenOptions, open_source, parse_spec
from edge.config import LiveConfig
from edge.errors import UsageError
from edge.frames import RawFrame
from helpers.rtsp import (
    CREDS,
    FPS,
    PASSWORD,
    SERVER,
    SYSTEM_PYTHON,
    USER,
    H,
    RtspServer,
    W,
)

TOKEN = "Qz7TokenX"
WRONG = f"{USER}:x{PASSWORD}"
SECRETS = (USER, PASSWORD, "Pw%403f9Kq", TOKEN, b64encode(WRONG.encode()).decode())


@pytest.fixture(scope="session")
def rtsp_ready() -> None:
    """Skip (fail on CI) when GStreamer's RTSP server cannot run here, with the reason."""
    if not Path(SYSTEM_PYTHON).exists():
        reason = f"{SYSTEM_PYTHON} is missing (the RTSP test server runs on the system python)"
    else:
        check = subprocess.run(
            [SYSTEM_PYTHON, str(SERVER), "--check"], capture_output=True, text=True, timeout=60
        )
        reason = "" if check.returncode == 0 else (check.stdout + check.stderr).strip()
    if reason and os.environ.get("CI") == "true":  # CI installs the packages: a failure there
        pytest.fail(f"RTSP test server unavailable: {reason}")
    if reason:
        pytest.skip(f"RTSP test server unavailable: {reason}; run: bash tests/system-packages.sh")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> tuple[Path, list]:
    """A second of real picture (the astronaut, panning): the server's raw BGR file, the frames."""
    still = cv2.resize(astronaut, (W, H), interpolation=cv2.INTER_AREA)
    frames = [np.roll(still, 8 * i, axis=1) for i in range(FPS)]
    path = tmp_path_factory.mktemp("rtsp") / "clip.bgr"
    path.write_bytes(b"".join(f.tobytes() for f in frames))
    return path, frames


@pytest.fixture
def rtsp(rtsp_ready: None, clip: tuple[Path, list]) -> Iterator[Callable[..., RtspServer]]:
    started: list[RtspServer] = []

    def start(port: int = 0, auth: bool = False) -> RtspServer:
        started.append(RtspServer(clip[0], port, auth))
        return started[-1]

    yield start
    for server in started:
        server.kill()


def stamps(frame: RawFrame) -> tuple[int, int]:
    """The server's stamps: ms from its encoder's input to our decoder's output, its counter."""
    blocks = frame.pixels[:32, : 24 * 16].reshape(2, 16, 24, 16, 3)[:, 4:12, :, 4:12]
    sent, count = (blocks.mean(axis=(1, 3, 4)) > 128) @ (1 << np.arange(23, -1, -1))
    return (int((frame.captured or 0) * 1000) - sent) % (1 << 24), count


def cfg(**overrides: float) -> LiveConfig:
    return LiveConfig(**{"timeout_s": 2.0, **overrides})


def test_rtsp_frames_are_decoded_fresh_and_in_order(
    rtsp: Callable[..., RtspServer], clip: tuple[Path, list]
) -> None:
    """With credentials in the URL (basic auth, a '%40' in the password, a query string)."""
    server, clock = rtsp(auth=True), RunClock()
    url, t0 = server.url(CREDS, f"?token={TOKEN}"), time.monotonic()
    source = NetworkSource(url, "rtsp", cfg(), clock)
    opened = time.monotonic() - t0
    wrapped = open_source(parse_spec(url), cfg(), clock, OpenOptions(), Events())
    with closing(source):
        assert (source.kind, source.live) == ("rtsp", True)
        # No user, password or query: only that they were there.
        assert source.label == wrapped.label == server.url("***@", "?***")
        assert (source.width, source.height, source.rate) == (W, H, Fraction(FPS))
        got = list(itertools.islice(source.frames(), 30))
        # A second client joins the shared stream between keyframes: its pictures start at the
        # next keyframe, none half-decoded (the content check below).
        with closing(NetworkSource(url, "rtsp", cfg(), clock)) as late:
            joined = list(itertools.islice(late.frames(), 3))
    assert [f.index for f in got] == list(range(30))
    for f in got + joined:
        assert f.pixels.shape == (H, W, 3) and f.pixels.dtype == np.uint8
        assert f.time_base == LIVE_TIME_BASE and f.captured is not None
        assert t0 < f.captured < time.monotonic()
        assert 0 <= f.pts - clock.pts(f.captured) < 90  # pts is the capture time (within 1 ms)
        # The picture is the server's frame, not a torn or concealed one.
        expected = clip[1][stamps(f)[1] % FPS]
        assert np.abs(f.pixels[32:].astype(int) - expected[32:]).mean() < 8
    assert [f.pts for f in got] == sorted({f.pts for f in got})
    counters = [stamps(f)[1] for f in got]
    assert counters == sorted(set(counters))
    latency = np.median([stamps(f)[0] for f in got[10:]])
    print(f"RTSP open {opened:.3f} s; sent-to-decoded median {latency:.0f} ms")
    assert latency < 400


CASES = ["wrong-password", "no-credentials", "closed-port", "with-query"]


@pytest.mark.parametrize("case", CASES)
def test_rtsp_failed_open_hides_credentials(
    rtsp: Callable[..., RtspServer], case: str, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    server = rtsp(auth=True)
    url = {
        "wrong-password": server.url(WRONG.replace("@", "%40") + "@"),
        "no-credentials": server.url(),
        "closed-port": f"rtsp://{CREDS}127.0.0.1:9/cam?token={TOKEN}",
        "with-query": server.url(f"{USER}:nope@", f"?token={TOKEN}"),
    }[case]
    # FFmpeg's own log lines too: switched on, they come through this module, scrubbed. Its
    # trace level shows each RTSP request it sends, Authorization header included.
    caplog.set_level(1)
    av.logging.set_level(av.logging.TRACE)
    try:
        with pytest.raises(SourceLost) as lost:
            NetworkSource(url, "rtsp", cfg(), RunClock())
    finally:
        av.logging.set_level(None)
    assert lost.value.reason == "open-failed"
    logged = [r.getMessage() for r in caplog.records]
    texts = [str(lost.value), repr(lost.value.args), *capfd.readouterr(), *logged]
    assert [(secret, t) for t in texts for secret in SECRETS if secret in t] == []
    assert any(r.name == "edge.capture.network" for r in caplog.records)
    assert case != "wrong-password" or any("Authorization: Basic ***" in t for t in logged)
    if case != "closed-port":
        assert "401" in str(lost.value) or "nauthorized" in str(lost.value)


def test_rtsp_stall_times_out(rtsp: Callable[..., RtspServer]) -> None:
    server = rtsp()
    source = NetworkSource(server.url(), "rtsp", cfg(timeout_s=1.0), RunClock())
    frames = source.frames()
    try:
        next(frames)
        os.kill(server.proc.pid, signal.SIGSTOP)  # still connected, sends nothing
        stopped = time.monotonic()
        with pytest.raises(SourceLost) as lost:
            for _ in range(100):
                next(frames)
        waited = time.monotonic() - stopped
    finally:
        source.close()
        os.kill(server.proc.pid, signal.SIGCONT)
    assert lost.value.reason == "timeout"
    assert 0.8 < waited < 2.5


@dataclass
class Events:
    lost: list[tuple[str, str]] = field(default_factory=list)
    restored: list[tuple[str, float, int]] = field(default_factory=list)

    def source_lost(self, kind: str, reason: str) -> None:
        self.lost.append((kind, reason))

    def source_restored(self, kind: str, offline_s: float, attempts: int) -> None:
        self.restored.append((kind, offline_s, attempts))


def test_rtsp_reconnects_on_the_run_clock(rtsp: Callable[..., RtspServer]) -> None:
    server, clock, events = rtsp(), RunClock(), Events()
    live = cfg(timeout_s=1.0, reconnect_min_s=0.1, reconnect_max_s=0.4)
    source = open_source(parse_spec(server.url()), live, clock, OpenOptions(), events)
    watchdog = threading.Timer(20, clock.stop.set)  # a hang fails the test instead
    watchdog.start()
    frames, restart = source.frames(), threading.Timer(1.5, lambda: rtsp(port=server.port))
    try:
        got = [next(frames) for _ in range(5)]
        server.kill()
        killed = time.monotonic()
        restart.start()
        after = 0
        for frame in frames:  # blocks through the outage
            got.append(frame)
            after += bool(events.restored)
            if after == 5 or len(got) > 200:
                break
        back = time.monotonic() - killed
        clock.stop.set()
        t = time.monotonic()
        assert next(frames, None) is None  # a stop ends frames() ...
        assert time.monotonic() - t < 0.5  # ... at once
    finally:
        watchdog.cancel()
        clock.stop.set()
        source.close()
        restart.cancel()
        if restart.is_alive():  # starting the server: let the fixture see it, to stop it
            restart.join()
    print(f"RTSP outage: {events}, {back:.2f} s from kill to restored frames")
    assert after == 5 and events.lost in ([("rtsp", "eof")], [("rtsp", "read-error")]), events
    [(kind, offline, attempts)] = events.restored
    assert kind == "rtsp" and 1.4 < offline < back + 0.1 and attempts >= 2
    assert [f.index for f in got] == list(range(len(got)))
    gaps = np.diff([f.pts for f in got]) * float(LIVE_TIME_BASE)
    assert gaps.min() > 0 and gaps.max() > 1.4  # increasing; the outage shows as a gap
    assert all(f.pixels.shape == (H, W, 3) for f in got)


# --- HTTP ---------------------------------------------------------------------------------------


class Streamer(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that sends `parts` `rate` times a second, goes silent (still
    connected) before part `stall_after`, and stops when closed."""

    daemon_threads = True

    def __init__(self, content_type: str, parts: list[bytes], rate: float, stall_after: int = -1):
        self.content_type, self.parts, self.rate = content_type, parts, rate
        self.stall_after, self.done = stall_after, threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.done.set()
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Streamer

    def do_GET(self) -> None:
        s = self.server
        self.send_response(200)
        self.send_header("Content-Type", s.content_type)
        self.end_headers()
        for i, part in enumerate(s.parts):
            if s.done.wait(10 if i == s.stall_after else 1 / s.rate):
                return
            try:
                self.wfile.write(part)
            except (BrokenPipeError, ConnectionResetError):
                return

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def mjpeg(astronaut: np.ndarray, count: int, stall_after: int = -1) -> Streamer:
    jpeg = cv2.imencode(".jpg", astronaut, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    part = b"--veil\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
    parts = [part % (len(jpeg), jpeg)] * count
    return Streamer("multipart/x-mixed-replace; boundary=veil", parts, 25, stall_after)


def test_http_mjpeg_frames(astronaut: np.ndarray) -> None:
    server, clock = mjpeg(astronaut, 200), RunClock()
    url = server.base.replace("//", f"//{CREDS}") + f"/stream.mjpg?token={TOKEN}"
    with closing(server), closing(NetworkSource(url, "http", cfg(), clock)) as source:
        assert (source.width, source.height) == astronaut.shape[1::-1]  # plain .mjpg, no format
        got = list(itertools.islice(source.frames(), 10))
    shown = server.base.replace("//", "//***@") + "/stream.mjpg?***"
    assert (source.kind, source.label) == ("http", shown)
    for f in got:
        assert f.pixels.shape == astronaut.shape and f.pixels.dtype == np.uint8
        assert np.abs(f.pixels.astype(int) - astronaut).mean() < 4  # the real picture
    assert [f.pts for f in got] == sorted({f.pts for f in got})


def test_http_h264_mpegts_stream(clip: tuple[Path, list]) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mpegts") as ts:
        stream = ts.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"tune": "zerolatency", "g": str(FPS)}
        for frame in clip[1] * 2:
            ts.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        ts.mux(stream.encode(None))
    data = buffer.getvalue()
    chunks = [data[i : i + 8192] for i in range(0, len(data), 8192)]  # paced over about 1 s:
    server = Streamer("video/mp2t", chunks, len(chunks))
    got: list[RawFrame] = []
    with (
        closing(server),
        closing(NetworkSource(server.base + "/ts", "http", cfg(), RunClock())) as source,
    ):
        try:
            for frame in source.frames():
                got.append(frame)
        except SourceLost as end:  # FFmpeg calls an HTTP body that ends (no length) an I/O error
            assert end.reason == "read-error"
    assert len(got) == 2 * FPS and all(f.pixels.shape == (H, W, 3) for f in got)
    assert np.abs(got[3].pixels.astype(int) - clip[1][3]).mean() < 8


@pytest.mark.parametrize("stall_after", [0, 3], ids=["at-open", "mid-stream"])
def test_http_stall_times_out(astronaut: np.ndarray, stall_after: int) -> None:
    server = mjpeg(astronaut, 10, stall_after)  # headers, `stall_after` frames, then silence
    got: list[RawFrame] = []
    since = time.monotonic()  # the last sign of life: the open, then each frame
    with closing(server):
        with pytest.raises(SourceLost) as lost:
            url = server.base + "/stream.mjpg"
            with closing(NetworkSource(url, "http", cfg(timeout_s=1), RunClock())) as source:
                for frame in source.frames():
                    got.append(frame)
                    since = time.monotonic()
        waited = time.monotonic() - since
    assert lost.value.reason == "timeout"
    assert len(got) == stall_after
    assert 0.9 < waited < 2.0


# --- OpenCV cameras -----------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/video-veil-missing", "/dev/null"])
def test_v4l2_without_a_camera_fails_to_open(device: str) -> None:
    with pytest.raises(SourceLost) as lost:
        V4L2Source(device, cfg(), RunClock())
    assert lost.value.reason == "open-failed" and device in str(lost.value)


def test_gst_with_pips_opencv_is_a_usage_error() -> None:
    if has_gstreamer():
        pytest.skip("this OpenCV has GStreamer (not pip's wheel)")
    pipeline = "videotestsrc ! videoconvert ! appsink"
    with pytest.raises(UsageError) as error:
        GStreamerSource(pipeline, cfg(), RunClock())
    message = str(error.value)
    assert "GStreamer" in message and "JetPack" in message and "\n" not in message
    # Not a lost camera: Reconnecting lets it end the run instead of retrying for ever.
    source = open_source(parse_spec(f"gst:{pipeline}"), cfg(), RunClock(), OpenOptions(), Events())
    with pytest.raises(UsageError):
        next(iter(source.frames()))


# --- why a camera does not open -----------------------------------------------------------------


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status its path names: /404, /401, /403."""

    def do_GET(self) -> None:
        code = int(self.path.strip("/").partition("?")[0])
        self.send_response(code)
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="cam"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def addresses() -> Iterator[dict[str, str]]:
    """Ports on 127.0.0.1 that refuse (bound, not listening), that never answer (listening,
    never accepting), and an HTTP server that answers with an error status."""
    refusing, silent = socket.socket(), socket.socket()
    refusing.bind(("127.0.0.1", 0))
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {
        "refused": f"127.0.0.1:{refusing.getsockname()[1]}",
        "silent": f"127.0.0.1:{silent.getsockname()[1]}",
        "http": f"127.0.0.1:{server.server_address[1]}",
    }
    server.shutdown()
    server.server_close()
    refusing.close()
    silent.close()


OPEN_FAILURES = {
    "rtsp-refused": ("rtsp://{creds}{refused}/cam?token={token}", "connection refused"),
    "http-refused": ("http://{creds}{refused}/cam", "connection refused"),
    "rtsp-silent": ("rtsp://{creds}{silent}/cam", "timed out (no answer in 1 s)"),
    "http-silent": ("http://{creds}{silent}/cam", "timed out (no answer in 1 s)"),
    "http-404": ("http://{creds}{http}/404?token={token}", "not found (404)"),
    "http-401": ("http://{creds}{http}/401", "unauthorized (401)"),
    "http-403": ("http://{creds}{http}/403", "forbidden (403)"),
    # .invalid never resolves (RFC 6761), with or without a way out to a name server.
    "host-not-found": ("rtsp://{creds}veil-camera.invalid/cam", "host not found"),
}


@pytest.mark.parametrize("case", list(OPEN_FAILURES), ids=list(OPEN_FAILURES))
def test_a_failed_open_says_what_failed_without_the_credentials(
    addresses: dict[str, str], case: str
) -> None:
    """Issue 22: a refused camera was only `open-failed`. The message says what failed, in the
    words a person acts on, after the address as it may be shown."""
    template, cause = OPEN_FAILURES[case]
    url = template.format(creds=CREDS, token=TOKEN, **addresses)
    kind = url.partition(":")[0]
    started = time.monotonic()
    with pytest.raises(SourceLost) as lost:
        NetworkSource(url, kind, cfg(timeout_s=1.0), RunClock())
    message = str(lost.value)
    assert message.startswith(f"{kind}://***@") and f": {cause}" in message, message
    assert "[Errno" not in message and "Invalid data" not in message
    assert [s for s in SECRETS if s in message] == []
    assert lost.value.reason == ("timeout" if "silent" in case else "open-failed")
    assert time.monotonic() - started < 5
