"""For the stream-out tests (tests/unit/sinks/test_stream_out.py, and the runs in tests/system/):
the sample clip redacted at its true boxes with irregular timestamps of its own, a real RTSP
receiver (tests/servers/rtsp_receiver.py) as a child process, a camera thread that times every
offer(), servers that never read, and a pipe reader."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SERVERS
from edge.config import RedactConfig
from edge.detect.detections import Detections
from edge.evaluate.protection import is_protected
from edge.frames import RawFrame, RedactedFrame
from edge.redact import Redactor
from edge.sample import Box, sample_frames
from edge.sinks.stream import StreamOut

RECEIVER = SERVERS / "rtsp_receiver.py"
FPS = 30
TB = Fraction(1, 90000)
STEP = 3000  # 1/30 s
# Frame i is at i/30 s give or take up to 10 ms, a pattern that never repeats: timestamps are
# the frames' own (variable rate), and a run of received ones fits the sent ones in one place only.
JITTER = np.random.default_rng(7).integers(-900, 901, 20_000)
NO_PTS = np.iinfo(np.int64).min  # what the receiver saves for a frame without a timestamp
WIDTH, HEIGHT = 640, 360
CLIP = 90
SECRET = "s3cr3t-pa55"  # in every RTSP URL: it must never be printed
# veil opens its outputs before the camera: the stream's first child has imported PyAV by the
# time frames come. The tests give it that time too.
WARM_UP = 1.5
OFFER_LIMIT = 0.005  # structural, not a benchmark: offer() only queues


@cache
def clip() -> list[tuple[np.ndarray, list[Box]]]:
    return list(sample_frames(WIDTH, HEIGHT, CLIP))


def source(index: int) -> tuple[np.ndarray, list[Box]]:
    return clip()[index % CLIP]


def stamp(index: int) -> int:
    return index * STEP + int(JITTER[index])


def redacted(index: int, *, faces: bool = True) -> RedactedFrame:
    """Frame `index` of the looped clip at `stamp(index)`, redacted at its true boxes
    (faces=False: at none, so the faces pass through as they are: the control)."""
    pixels, boxes = source(index)
    xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes if faces], np.float32)
    found = Detections(xyxy.reshape(-1, 4), np.ones(len(xyxy), np.float32))
    raw = RawFrame(pixels.copy(), index=index, pts=stamp(index), time_base=TB)
    return Redactor(RedactConfig()).redact(raw, found)


@cache
def redacted_clip() -> list[RedactedFrame]:
    """The clip redacted, minted once: offering them keeps the pace true."""
    return [redacted(i) for i in range(CLIP)]


def url(port: int) -> str:
    return f"rtsp://veil:{SECRET}@127.0.0.1:{port}/veil"


class Events:
    def __init__(self) -> None:
        self.lost: list[tuple[str, str]] = []
        self.restored: list[tuple[str, float, int]] = []
        self.changed = threading.Event()

    def output_lost(self, output: str, reason: str) -> None:
        self.lost.append((output, reason))
        self.changed.set()

    def output_restored(self, output: str, offline_s: float, attempts: int) -> None:
        self.restored.append((output, offline_s, attempts))
        self.changed.set()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class Receiver:
    """tests/servers/rtsp_receiver.py on `port`, up and listening once constructed."""

    def __init__(self, port: int, out: Path) -> None:
        self.out = out
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, str(RECEIVER), "--port", str(port), "--out", str(out)],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(30):
            self.proc.kill()
            pytest.fail(f"the RTSP receiver did not listen: {self.lines}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.strip() == "listening":
                self._listening.set()

    @property
    def frames(self) -> int:
        return sum(line.startswith("frame ") for line in self.lines)

    def finish(self, timeout: float = 20.0) -> dict[str, Any]:
        """Its saved frames, once the publisher has left and it has exited."""
        assert self.proc.wait(timeout) == 0, self.lines
        with np.load(self.out) as saved:
            return {key: saved[key] for key in saved.files}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def timed_offer(out: StreamOut, frame: RedactedFrame) -> float:
    """How long offer() took, without the interpreter's own pauses: no garbage collection in it,
    and a fresh GIL time slice to start with (sleep(0) lets the stream's thread have its turn
    first), so what is measured is offer() itself waiting, or not, on the output."""
    time.sleep(0)
    gc.disable()
    try:
        began = time.perf_counter()
        out.offer(frame)
        return time.perf_counter() - began
    finally:
        gc.enable()


class Camera:
    """Offers frame 0, 1, 2, ... at 30 a second from its own thread, timing every offer()."""

    def __init__(self, out: StreamOut, frames: list[RedactedFrame] | None = None) -> None:
        self.out = out
        self._frames = frames or redacted_clip()
        self.offered = 0
        self.slowest = 0.0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            frame = self._frames[self.offered % len(self._frames)]
            again = Redactor(RedactConfig()).redact(
                RawFrame(frame.pixels, index=self.offered, pts=stamp(self.offered), time_base=TB),
                Detections.empty(),  # already redacted: minted again only for its timestamp
            )
            try:
                self.slowest = max(self.slowest, timed_offer(self.out, again))
            except BaseException as exc:  # the test fails on it
                self.errors.append(exc)
            self.offered += 1
            self._stop.wait(max(0.0, start + self.offered / FPS - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def matched(saved: dict[str, Any], offered: int) -> tuple[list[tuple[int, np.ndarray]], int]:
    """(source frame index, received picture) for each received frame, found by its timestamp;
    and how many came without one (FFmpeg's first of each connection). The receiver's clock is
    ours less a constant (its RTCP mapping): the one shift that fits them to the sent stamps."""
    base = Fraction(int(saved["num"]), int(saved["den"]))
    sent = {stamp(i): i for i in range(offered)}
    timed = [
        (round(int(pts) * base / TB), picture)
        for pts, picture in zip(saved["pts"], saved["frames"], strict=True)
        if pts != NO_PTS
    ]
    if not timed:
        return [], len(saved["pts"])

    def place(ticks: int, shift: int) -> int | None:
        for near in (0, -1, 1, -2, 2):  # later sender reports may round by a tick or two
            if (index := sent.get(ticks + shift + near)) is not None:
                return index
        return None

    shift = max(
        (s - timed[0][0] for s in sent),
        key=lambda shift: sum(place(ticks, shift) is not None for ticks, _ in timed),
    )
    assert abs(shift) < 90000, shift  # within a second: the recording's own clock, not a new one
    placed = [(place(ticks, shift), picture) for ticks, picture in timed]
    assert all(index is not None for index, _ in placed), [index for index, _ in placed]
    return [(int(index), picture) for index, picture in placed if index is not None], len(
        saved["pts"]
    ) - len(timed)


def assert_redacted(index: int, picture: np.ndarray) -> None:
    """Every true face of source frame `index` protected in `picture`; and `picture` is that
    frame (closer to it than to its neighbours), so the timestamp carried the right moment."""
    before, boxes = source(index)
    for box in boxes:
        assert is_protected(before, picture, box), (index, box)
        assert not is_protected(before, before, box)  # the control: unredacted, it is not
    error = {
        k: float(np.mean(np.abs(picture.astype(np.int16) - redacted(k).pixels)))
        for k in (index - 1, index, index + 1)
        if k >= 0
    }
    assert min(error, key=error.__getitem__) == index, (index, error)


class SilentServer:
    """A TCP listener that accepts connections and never reads from them (nor answers); with
    rtsp, it first answers the handshake as a server would (or, with deny, refuses it)."""

    def __init__(self, *, rtsp: bool, deny: bool = False) -> None:
        self.rtsp = rtsp
        self.deny = deny  # answer 401 to the first request instead
        self.sock = socket.socket()
        # A small receive buffer: a stalled reader is reached after kilobytes, not megabytes.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.handshakes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            if self.rtsp:
                threading.Thread(target=self._handshake, args=(conn,), daemon=True).start()

    def _handshake(self, conn: socket.socket) -> None:
        """Answer OPTIONS, ANNOUNCE, SETUP and RECORD as a server would; then read no more."""
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                head, _, data = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int(fields.get("Content-Length", "0"))
                while len(data) < length:
                    data += conn.recv(4096)
                data = data[length:]
                method = lines[0].split()[0]
                if self.deny:
                    conn.sendall(
                        f"RTSP/1.0 401 Unauthorized\r\nCSeq: {fields['CSeq']}\r\n\r\n".encode()
                    )
                    return
                extra = ""
                if method == "SETUP":
                    extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1\r\n"
                reply = f"RTSP/1.0 200 OK\r\nCSeq: {fields['CSeq']}\r\n{extra}\r\n"
                conn.sendall(reply.encode())
                if method == "RECORD":
                    self.handshakes += 1
                    return
        except (OSError, KeyError, IndexError):
            return

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@cache
def noise() -> list[RedactedFrame]:
    """Frames x264 cannot compress much: a stalled receiver's socket buffers fill in a second,
    not in the many seconds the sample clip's few kilobytes a frame would take."""
    rng = np.random.default_rng(3)
    return [
        Redactor(RedactConfig()).redact(
            RawFrame(rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8), index=i),
            Detections.empty(),
        )
        for i in range(8)
    ]


class Pipe:
    """An os.pipe: the stream out writes the write end; a thread reads the other, and closes it
    after `keep` bytes when asked to (a reader that went away)."""

    def __init__(self, keep: int | None = None) -> None:
        read, write = os.pipe()
        self.writer = os.fdopen(write, "wb")
        self._read = read
        self.data = bytearray()
        self._keep = keep
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while chunk := os.read(self._read, 65536):
            self.data += chunk
            if self._keep is not None and len(self.data) >= self._keep:
                break
        os.close(self._read)

    def done(self) -> bytes:
        self.writer.close()
        self._thread.join(10)
        return bytes(self.data)
