"""The live sources' interface: cameras and streams that deliver frames on their own clock.

A live source yields `RawFrame`s whose `pts` is the capture time since the run began, in
`LIVE_TIME_BASE` ticks (a file source keeps its own timestamps), and whose `captured` is the
`time.monotonic()` of capture, from which each frame's deadline counts. A camera or stream that
stops delivering raises `SourceLost`; `Reconnecting` (edge/capture/reconnect.py) then reopens it
with backoff, on the same clock, so times keep increasing and an outage shows as a gap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from edge.errors import MediaError
from edge.frames import Pixels, RawFrame

LIVE_TIME_BASE = Fraction(1, 90_000)  # the MPEG clock; MP4 keeps it exactly


class SourceLost(MediaError):
    """A live source stopped delivering: unplugged, connection dropped, read error, or an end of
    stream where none is expected. `reason` is a short word for the log ("eof", "read-error",
    "timeout", "open-failed"); the message never holds a URL's credentials."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class RunClock:
    """The run's time origin, shared by every (re)opened source of one run."""

    t0: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    _last: int = field(default=-1, repr=False)  # the pts of the frame stamped last

    def pts(self, captured: float) -> int:
        return max(0, round((captured - self.t0) / LIVE_TIME_BASE))

    def frame(
        self, pixels: Pixels, index: int, captured: float, lores: Pixels | None = None
    ) -> RawFrame:
        """A live frame captured at `captured`, stamped at least one tick after the previous
        frame of the run, whichever connection it came from (frames buffered while a stream
        opens come out microseconds apart, and a muxer needs strictly increasing times). One
        capture thread stamps them."""
        self._last = max(self.pts(captured), self._last + 1)
        return RawFrame(pixels, index, self._last, LIVE_TIME_BASE, captured=captured, lores=lores)


class LiveSource(Protocol):
    kind: str  # "file", "v4l2", "rtsp", "http", "gst", "picamera2"
    label: str  # what logs, the status and errors may show: never credentials
    width: int
    height: int
    rate: Fraction | None  # nominal frames per second, if known
    live: bool  # paced by a clock: Veil drops frames rather than make it wait

    def frames(self) -> Iterator[RawFrame]:
        """Frames in capture order; raises `SourceLost` when the source fails. Returns only at
        a planned end (the end of a file source, or `RunClock.stop`)."""

    def close(self) -> None: ...


class SourceEvents(Protocol):
    """Told when a live source is lost and when it is back (the audit trail, the status)."""

    def source_lost(self, kind: str, reason: str) -> None: ...

    def source_restored(self, kind: str, offline_s: float, attempts: int) -> None: ...
