"""One RTSP connection of the stream out, pushed by a child process.

Why not FFmpeg's RTSP muxer in-process, on the stream out's own thread? Because of two things it
does (FFmpeg 8, PyAV 18; tests/unit/sinks/test_stream_out.py shows the cure):

- PyAV calls `avformat_write_header` and `av_write_trailer` holding the GIL, and for RTSP those
  are the connection's handshake (OPTIONS, ANNOUNCE, SETUP, RECORD) and its TEARDOWN. A server
  that accepts and does not answer froze every Python thread for the whole socket timeout: the
  frame loop included, which must never wait for a side output.
- Over TCP it ignores what writing the interleaved RTP packets returns: a server that stops
  reading makes each packet wait out the socket timeout, and the error is dropped. One frame's
  packets took a minute with a one-second timeout; nothing failed.

So each connection is a child process (`python -c 'from edge.sinks.stream.rtsp import child;
child()'`) that owns the encoder and the muxer, and is fed raw frames on its stdin: I420 (or BGR
for odd sizes), each after its 8-byte timestamp in 1/90000 s. The parent writes to that pipe
without blocking and judges the receiver by the pipe: no progress for `timeout_s` and the child
is killed. A child cannot hold the parent's GIL, and killing it is always prompt. Each new
child's encoder starts with a keyframe, so each connection does.

The child tells the parent on its stdout, one word a line: `ready` (imported, waiting for the
header), `connected` (the server took the stream), `lost REASON`. The URL, which may hold a
password, reaches it on stdin (not the command line, which `ps` shows); it never prints it, and
its stderr goes nowhere: FFmpeg's messages may quote the URL.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from fractions import Fraction
from typing import IO, Any

import av
import numpy as np

from edge.frames import Pixels
from edge.sinks.h264 import add_h264_stream, i420, pix_fmt_for
from edge.sinks.nice import below_the_loop

TIME_BASE = Fraction(1, 90000)  # RTP's video clock: timestamps go out without rounding again
PTS = struct.Struct("<q")
# A child still importing PyAV is not a stalled receiver: it gets this long to say `ready`.
STARTUP_SECONDS = 20.0
# After stdin closes, how long the child may take to flush and send TEARDOWN before it is killed.
EXIT_SECONDS = 1.0
PIPE_BYTES = 1 << 20  # a few frames: the child reads whole frames, the parent never blocks
SLICE = 0.05  # longest wait without looking at the clock and the child's messages


class Lost(Exception):
    """The connection is gone; `reason` is one short word, never the URL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reason_of(exc: BaseException, *, elapsed: float = 0.0, timeout_s: float = 0.0) -> str:
    """refused, reset, timeout, closed or error, from the exception alone (never its message)."""
    code = getattr(exc, "errno", None)
    if code == errno.ECONNREFUSED or isinstance(exc, (ConnectionRefusedError, av.HTTPClientError)):
        return "refused"  # nothing listens, or the server said no (401, 403, 404, ...)
    if code == errno.ECONNRESET or isinstance(exc, ConnectionResetError):
        return "reset"
    if code in (errno.ETIMEDOUT, errno.EAGAIN) or isinstance(exc, TimeoutError):
        return "timeout"
    if code == errno.EPIPE or isinstance(exc, (BrokenPipeError, EOFError)):
        return "closed"
    # FFmpeg reports a handshake that timed out as invalid data; the clock tells them apart.
    if timeout_s > 0 and elapsed >= 0.9 * timeout_s:
        return "timeout"
    return "error"


def layout(width: int, height: int) -> tuple[str, int]:
    """How a frame travels to the child: its pixel format and its size in bytes."""
    if pix_fmt_for(width, height) == "yuv420p":
        return "yuv420p", width * height * 3 // 2
    return "bgr24", width * height * 3


class Pusher:
    """The parent's end of one child: `start` hands it the stream's settings, `send` a frame;
    both raise Lost. `connected` turns true once the server has taken the stream."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self.shape: tuple[int, int] | None = None
        self.connected = False
        self._ready_at: float | None = None
        self._spawned = time.monotonic()
        self._progress = self._spawned
        self._said = b""
        self._lost: str | None = None
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from edge.sinks.stream.rtsp import child; child()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in, self._out = self._proc.stdin.fileno(), self._proc.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        try:
            fcntl.fcntl(self._in, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # the default 64 KiB works too, in more, smaller writes
        # poll(), not select(): a long-running process may hold descriptors past FD_SETSIZE.
        self._waiter = select.poll()
        self._waiter.register(self._in, select.POLLOUT)
        self._waiter.register(self._out, select.POLLIN)

    def start(
        self,
        shape: tuple[int, int],
        *,
        rate: Fraction,
        crf: int,
        preset: str,
        keyint: int,
        cutoff: float | None = None,
    ) -> None:
        self.shape = shape
        height, width = shape
        header = {
            "url": self._url,
            "width": width,
            "height": height,
            "rate": [rate.numerator, rate.denominator],
            "crf": crf,
            "preset": preset,
            "keyint": keyint,
            "timeout_us": int(self._timeout_s * 1e6),
        }
        self._write(json.dumps(header).encode() + b"\n", cutoff)

    def send(self, pixels: Pixels, pts: int, cutoff: float | None = None) -> None:
        """Hand the child one frame (timestamp in TIME_BASE); waits only for the pipe."""
        height, width = pixels.shape[:2]
        data = i420(pixels) if layout(width, height)[0] == "yuv420p" else pixels
        self._write(PTS.pack(pts), cutoff)
        self._write(np.ascontiguousarray(data).reshape(-1).data, cutoff)

    def poll(self) -> None:
        """Take in what the child said; raises Lost if it gave up or died."""
        try:
            while chunk := os.read(self._out, 4096):
                self._said += chunk
            else:
                self._lost = self._lost or "error"  # EOF: it exited
        except BlockingIOError:
            pass
        *lines, self._said = self._said.split(b"\n")
        for line in lines:
            word, _, rest = line.decode("ascii", "replace").partition(" ")
            if word == "ready":
                self._ready_at = time.monotonic()
            elif word == "connected":
                self.connected = True
            elif word == "lost":
                self._lost = rest or "error"
        if self._lost is not None:
            raise Lost(self._lost)

    def _write(self, data: bytes | memoryview, cutoff: float | None) -> None:
        view = memoryview(data)
        while view:
            self.poll()
            try:
                written = os.write(self._in, view)
            except BlockingIOError:
                written = 0
            except BrokenPipeError:
                self._lost = self._lost or "error"
                self.poll()
                raise Lost(self._lost) from None
            now = time.monotonic()
            if written:
                view = view[written:]
                self._progress = now
                continue
            if self._ready_at is None:
                deadline = self._spawned + STARTUP_SECONDS
            else:
                deadline = max(self._progress, self._ready_at) + self._timeout_s
            if cutoff is not None:
                deadline = min(deadline, cutoff)
            if now >= deadline:
                raise Lost("timeout")  # the receiver takes nothing, or the child is stuck
            self._waiter.poll(max(1, int(min(SLICE, deadline - now) * 1000)))

    def close(self, cutoff: float) -> None:
        """Let the child flush and say TEARDOWN until `cutoff` at most, then kill it. Quiet."""
        self._shut_pipe(self._proc.stdin)  # EOF: the child finishes
        try:
            self._proc.wait(
                max(0.0, min(cutoff, time.monotonic() + EXIT_SECONDS) - time.monotonic())
            )
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """End the child now, and let go of its pipes (a run that reconnects for days must not
        leak two descriptors a try)."""
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(5.0)  # SIGKILL: the kernel reaps it in milliseconds
        except subprocess.TimeoutExpired:
            pass
        self._shut_pipe(self._proc.stdin)
        self._shut_pipe(self._proc.stdout)

    @staticmethod
    def _shut_pipe(pipe: IO[bytes] | None) -> None:
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass  # a pipe whose other end has gone: closed all the same


# --- the child --------------------------------------------------------------------------------


def _say(text: str) -> None:
    try:
        os.write(1, text.encode("ascii") + b"\n")
    except OSError:
        pass  # the parent is gone; stdin's EOF ends us


def _read_exact(stream: Any, view: memoryview) -> bool:
    """Fill `view` from `stream`; False on EOF (the parent closed the stream out)."""
    filled = 0
    while filled < len(view):
        got = stream.readinto(view[filled:])
        if not got:
            return False
        filled += got
    return True


def child() -> None:
    """The child's whole life: read the header, connect, push frames until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it closes our stdin
    below_the_loop()  # the only thread yet: x264's threads inherit it
    _say("ready")
    stdin = sys.stdin.buffer
    line = stdin.readline()
    if not line:
        return
    head = json.loads(line)
    width, height = int(head["width"]), int(head["height"])
    fmt, size = layout(width, height)
    timeout_s = head["timeout_us"] / 1e6
    stamp, pixels = bytearray(PTS.size), bytearray(size)
    shape = (height * 3 // 2, width) if fmt == "yuv420p" else (height, width, 3)
    picture = np.frombuffer(pixels, dtype=np.uint8).reshape(shape)
    container: Any = None
    started = time.monotonic()
    connected = False
    try:
        container = av.open(
            head["url"],
            "w",
            format="rtsp",
            options={"rtsp_transport": "tcp", "timeout": str(int(head["timeout_us"]))},
        )
        stream = add_h264_stream(
            container,
            width=width,
            height=height,
            rate=Fraction(*head["rate"]),
            time_base=TIME_BASE,
            crf=int(head["crf"]),
            preset=str(head["preset"]),
            keyint=int(head["keyint"]),
        )
        while _read_exact(stdin, memoryview(stamp)) and _read_exact(stdin, memoryview(pixels)):
            frame = av.VideoFrame.from_ndarray(picture, format=fmt)
            frame.pts = PTS.unpack(stamp)[0]
            frame.time_base = TIME_BASE
            # Encoded before the first mux, which connects: the first packet follows the
            # handshake at once, and a receiver that dates packets by the first RTCP sender
            # report (FFmpeg's does) sees our timestamps less only the handshake's duration.
            packets = stream.encode(frame)
            started = time.monotonic()
            container.mux(packets)
            if not connected:
                connected = True
                _say("connected")
        container.mux(stream.encode(None))
        container.close()
    except Exception as exc:  # never the message: it quotes the URL
        _say(f"lost {reason_of(exc, elapsed=time.monotonic() - started, timeout_s=timeout_s)}")
        sys.exit(3)
