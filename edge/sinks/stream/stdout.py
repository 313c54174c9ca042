"""The stream out to standard output (`--stream-out -`): H.264 in MPEG-TS, or MJPEG, muxed here
by PyAV into a file object that will not wait for a stalled reader.

A reader that stops reading must not hang the stream out's thread forever, nor the process at
exit (Python flushes a buffered sys.stdout there). So the bytes go to the descriptor directly,
a pipe's atomic chunk at a time once poll() says it takes one, and a reader that takes nothing
for `timeout_s` is given up on. Unlike the RTSP muxer, the MPEG-TS and MJPEG muxers do nothing
slow while PyAV holds the GIL: their only waits are these writes, which release it.
"""

from __future__ import annotations

import errno
import io
import os
import select
import time
from fractions import Fraction
from typing import Any, BinaryIO

import av

from edge.frames import Pixels
from edge.sinks.h264 import add_h264_stream, video_frame
from edge.sinks.stream.rtsp import TIME_BASE, Lost, reason_of

CHUNK = select.PIPE_BUF  # a pipe that poll() calls writable takes this much without blocking
# MJPEG quality as FFmpeg's qscale (2 best .. 31 worst): crf is x264's and means nothing to it.
MJPEG_QSCALE = 5
FF_QP2LAMBDA = 118


class DeadlineWriter:
    """A write-only file for PyAV over `file`'s descriptor: raises TimeoutError when the reader
    takes nothing for `timeout_s` (or past `cutoff`), BrokenPipeError when it has gone.
    `closed` set true makes PyAV skip the trailer (nothing more is written)."""

    def __init__(self, file: BinaryIO, timeout_s: float) -> None:
        self._file = file
        self._timeout_s = timeout_s
        self.closed = False
        self.cutoff: float | None = None
        try:
            self._fd: int | None = file.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            self._fd = None  # an in-memory file: written as is
        else:
            file.flush()  # what it buffered goes first
            # poll(), not select(): a long-running process may hold descriptors past FD_SETSIZE.
            self._waiter = select.poll()
            self._waiter.register(self._fd, select.POLLOUT)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        if self.closed:
            raise BrokenPipeError(errno.EPIPE, "the stream out was closed")
        if self._fd is None:
            self._file.write(data)
            return len(data)
        view = memoryview(data)
        while view:
            deadline = time.monotonic() + self._timeout_s
            if self.cutoff is not None:
                deadline = min(deadline, self.cutoff)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._waiter.poll(max(1, int(remaining * 1000))):
                raise TimeoutError(errno.ETIMEDOUT, "the reader takes nothing")
            view = view[os.write(self._fd, view[:CHUNK]) :]
        return len(data)


class StdoutLink:
    """One stream to the file: opened on the first frame (it needs the size). `send` raises
    Lost; there is no second connection to a pipe, so the caller never opens another."""

    connected = True  # nothing to wait for: the first frame written is the stream

    def __init__(
        self,
        file: BinaryIO,
        fmt: str,
        shape: tuple[int, int],
        *,
        rate: Fraction,
        crf: int,
        preset: str,
        keyint: int,
        timeout_s: float,
    ) -> None:
        self.shape: tuple[int, int] | None = shape
        height, width = shape
        self._writer = DeadlineWriter(file, timeout_s)
        try:
            # flush_packets: each packet reaches the reader as it is muxed, not 32 KiB later.
            self._container: Any = av.open(
                self._writer, "w", format=fmt, container_options={"flush_packets": "1"}
            )
            if fmt == "mjpeg":
                stream = self._container.add_stream("mjpeg", rate=rate)
                stream.width, stream.height = width, height
                stream.pix_fmt = "yuvj420p"
                stream.time_base = TIME_BASE
                stream.codec_context.time_base = TIME_BASE
                stream.options = {
                    "flags": "+qscale",
                    "global_quality": str(MJPEG_QSCALE * FF_QP2LAMBDA),
                }
            else:
                stream = add_h264_stream(
                    self._container,
                    width=width,
                    height=height,
                    rate=rate,
                    time_base=TIME_BASE,
                    crf=crf,
                    preset=preset,
                    keyint=keyint,
                )
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise Lost(reason_of(exc)) from None
        self._stream = stream

    def send(self, pixels: Pixels, pts: int, cutoff: float | None = None) -> None:
        self._writer.cutoff = cutoff
        frame = video_frame(pixels, self._stream.pix_fmt)
        frame.pts = pts
        frame.time_base = TIME_BASE
        try:
            self._container.mux(self._stream.encode(frame))
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._writer.closed = True  # a half-written stream: no trailer after it
            raise Lost(reason_of(exc)) from None

    def poll(self) -> None:
        pass

    def close(self, cutoff: float) -> None:
        """Flush the encoder and write the trailer, until `cutoff` at most. Quiet."""
        self._writer.cutoff = cutoff
        try:
            if not self._writer.closed:
                self._container.mux(self._stream.encode(None))
        except (av.FFmpegError, OSError, ValueError):
            self._writer.closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError, ValueError):
            pass
        self._writer.closed = True

    def kill(self) -> None:
        self._writer.closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError, ValueError):
            pass
