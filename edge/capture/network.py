"""Network cameras through PyAV (FFmpeg): RTSP(S) over TCP and HTTP(S) streams (MJPEG as
multipart/x-mixed-replace, H.264 in MPEG-TS or fragmented MP4), video only.

The FFmpeg options, and why:

- `rtsp_transport=tcp`: RTP interleaved in the RTSP connection. Over UDP a lost packet is a torn
  frame, and NAT or a firewall often drops the stream outright; TCP costs a little latency.
- `allowed_media_types=video`: the camera's microphone is never set up (nor read, nor sent).
- `fpsprobesize=0`, a small `probesize` (one packet for RTSP, whose SDP already lists the
  streams) and `analyzeduration`: FFmpeg otherwise reads 20 frames and more to guess a frame
  rate, which delays the open by over a second and then hands those frames over late. The
  picture size comes from the first decoded frame instead.
- no `fflags=nobuffer`: it throws away the packets read while probing, the keyframe among them,
  so the picture could only start at the next keyframe, up to a GOP later.
- no `flags=low_delay`: H.264 decoding already outputs at once when the stream says it has no
  B-frames; forced on a stream that has them, it would put frames out of order.
- decoder slice threads only: frame threads hold back one frame per thread.

RTSP H.264 arrives one frame interval late: FFmpeg's H.264 parser knows a frame is complete only
when the next one starts. MJPEG parts carry their length and come out at once.

Timeouts are PyAV's interrupt callback (`av.open(timeout=(open, read))`), checked inside every
blocking socket wait whatever the protocol, so a server that accepts and then says nothing
fails within about `timeout_s` (at open at most twice that: connecting, then probing). A stream
that ends returns from `frames()`; `Reconnecting` treats that as a loss.

A URL's user, password and query never appear in a label, an error or a log line: every FFmpeg
message (exceptions, and FFmpeg's log if PyAV's logging is switched on) passes `scrub`.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, cast
from urllib.parse import urlsplit

import av
import av.error
import av.logging

from edge.capture.live import RunClock, SourceLost
from edge.capture.urls import safe_url, scrub
from edge.capture.video_file import to_bgr
from edge.config import LiveConfig
from edge.frames import RawFrame

log = logging.getLogger(__name__)

# See the module docstring for why each option is there.
_OPTIONS = {
    "rtsp": {
        "rtsp_transport": "tcp",
        "allowed_media_types": "video",
        "fpsprobesize": "0",
        "probesize": "32",  # the SDP has announced the streams: probing one packet is enough
    },
    "http": {
        "fpsprobesize": "0",
        "probesize": "500000",  # bytes: past an MPEG-TS stream's tables and a keyframe
        "analyzeduration": "500000",  # µs
    },
}
_TIMEOUTS = (errno.ETIMEDOUT,)
# What a failed open means, in words a person acts on (RTSP servers answer with HTTP's codes).
_CAUSES: dict[type[BaseException], str] = {
    av.error.ConnectionRefusedError: "connection refused (nothing listens at that port)",
    av.error.HTTPNotFoundError: "not found (404): no stream at that path",
    av.error.HTTPUnauthorizedError: "unauthorized (401): wrong or missing user name or password",
    av.error.HTTPForbiddenError: "forbidden (403): this user may not watch that stream",
}
_FIRST_PICTURE_S = 30.0  # longer than the keyframe interval of "smart" H.264 camera codecs
_ENDED = object()  # the end of the stream, from next(packets, _ENDED)


class NetworkSource:
    live = True

    def __init__(self, url: str, kind: str, cfg: LiveConfig, clock: RunClock) -> None:
        if kind not in _OPTIONS:
            raise ValueError(f"NetworkSource: kind must be rtsp or http, not {kind!r}")
        self.kind = kind
        self.label = safe_url(url)
        self._url = url
        self._clock = clock
        self._timeout = cfg.timeout_s
        self._container: Any = None
        self._container = self._step(self._open)
        try:
            self._stream = self._container.streams.video[0]
            # Slice threads decode one frame on several cores without holding frames back.
            self._stream.thread_type = "SLICE"
            rate = self._stream.average_rate
            self.rate: Fraction | None = Fraction(rate) if rate and 0 < rate <= 240 else None
            self._packets = self._read()
            # The first picture tells the size; until then the source is not open.
            self._first: tuple[Any, float] | None = self._first_picture()
            self.width, self.height = int(self._first[0].width), int(self._first[0].height)
        except BaseException:
            self.close()
            raise

    def _open(self) -> Any:
        started = time.monotonic()
        try:
            container = av.open(
                self._url,
                mode="r",
                options=_OPTIONS[self.kind],
                timeout=(self._timeout, self._timeout),
            )
        except av.FFmpegError as exc:
            waited = time.monotonic() - started
            if (cause := _CAUSES.get(type(exc))) is not None:
                raise SourceLost(f"{self.label}: {cause}", "open-failed") from None
            if _timed_out(exc) or waited >= self._timeout:
                # FFmpeg's RTSP reports a server that never answers as invalid data.
                raise SourceLost(
                    f"{self.label}: timed out (no answer in {self._timeout:g} s)", "timeout"
                ) from None
            if getattr(exc, "errno", None) == errno.EIO and not self._resolves():
                raise SourceLost(f"{self.label}: host not found", "open-failed") from None
            raise SourceLost(
                f"{self.label}: cannot open ({self._reason(exc)})", "open-failed"
            ) from None
        if not container.streams.video:
            container.close()
            raise SourceLost(f"{self.label}: the stream has no video", "open-failed")
        return container

    def _read(self) -> Iterator[tuple[Any, float] | None]:
        """Each decoded frame with the monotonic time it came out of the decoder, and None for
        a packet that gave none, so that callers look at the clock between packets."""
        try:
            for packet in self._container.demux(self._stream):
                frames = packet.decode()
                for frame in frames:
                    yield frame, time.monotonic()
                if not frames:
                    yield None
        except av.FFmpegError as exc:
            if _timed_out(exc):
                raise SourceLost(
                    f"{self.label}: no data for {self._timeout:g} s", "timeout"
                ) from None
            raise SourceLost(
                f"{self.label}: read failed ({self._reason(exc)})", "read-error"
            ) from None

    def _first_picture(self) -> tuple[Any, float]:
        # Joined between two keyframes (a camera shares one stream among its clients), the
        # decoder has nothing to show until the next one, which may be many seconds away.
        wait = max(self._timeout, _FIRST_PICTURE_S)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._clock.stop.is_set():
                raise SourceLost(f"{self.label}: stopped while opening", "open-failed")
            item = self._step(lambda: next(self._packets, _ENDED))
            if item is _ENDED:
                raise SourceLost(f"{self.label}: the stream ended before a picture", "open-failed")
            if item is not None:
                return cast(tuple[Any, float], item)
        raise SourceLost(f"{self.label}: data but no picture for {wait:g} s", "timeout")

    def frames(self) -> Iterator[RawFrame]:
        index = 0
        while not self._clock.stop.is_set():
            if self._first is not None:
                item: Any = self._first
                self._first = None
            else:
                item = self._step(lambda: next(self._packets, _ENDED))
            if item is _ENDED:
                return  # the server ended the stream
            if item is None:
                continue  # a packet without a picture (yet)
            frame, captured = item
            yield self._clock.frame(to_bgr(frame), index, captured)
            index += 1

    def close(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                self._step(container.close)
            except av.FFmpegError:
                pass  # a connection that is already gone has nothing left to close

    def _step(self, call: Any) -> Any:
        """`call()`, with what FFmpeg logs meanwhile on this thread scrubbed and passed on (only
        when PyAV's FFmpeg logging is on: PyAV keeps FFmpeg quiet by default)."""
        with av.logging.Capture() as lines:
            try:
                return call()
            finally:
                for level, name, message in lines:
                    log.log(
                        av.logging.adapt_level(level),
                        "%s: %s",
                        name,
                        self._scrub(message.strip()),
                    )

    def _resolves(self) -> bool:
        """Whether the host FFmpeg looked up has an address. FFmpeg says only "I/O error" when it
        has none; its log says more, but is off unless the user turns it on. The host is taken
        from the label, cut where FFmpeg cuts it, so nothing of the credentials is looked up."""
        host = urlsplit(self.label).hostname
        if not host or "(unparsable)" in self.label:
            return True  # not known to be the name: say what FFmpeg said
        try:
            socket.getaddrinfo(host, None)
        except (OSError, UnicodeError):
            return False
        return True

    def _reason(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()
        return self._scrub(text[-1] if text else type(exc).__name__)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._url)


def _timed_out(exc: BaseException) -> bool:
    # ExitError: PyAV's interrupt callback ended a wait that outlasted the timeout.
    return isinstance(exc, av.ExitError) or getattr(exc, "errno", None) in _TIMEOUTS
