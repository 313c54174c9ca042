"""The recording's timestamp rule, in one place: the recording and the stream out stamp each frame
the same way, so a moment in the stream out is the same moment in the recorded segments."""

from __future__ import annotations

import math
from fractions import Fraction

from edge.frames import RedactedFrame


class Timeline:
    """Each frame's own timestamp while it moves forward; one nominal step (1 / `rate`) past the
    last one where a frame has none, or would not move forward (a source that restarted its
    clock, a duplicated frame). So timestamps only ever increase, whatever the source does, and
    they are never reset: the recording's segment two starts at 60 s, not at 0.

    `peek` stamps a frame without taking the stamp: the recording takes it (`take`) only once
    the frame is written, so a frame it failed to write leaves no gap behind."""

    def __init__(self, rate: Fraction) -> None:
        if rate <= 0:
            raise ValueError(f"frame rate must be positive, got {rate}")
        self._rate = Fraction(rate)
        self._last: tuple[int, Fraction] | None = None  # pts and time base of the last frame

    def peek(self, frame: RedactedFrame) -> tuple[int, Fraction]:
        """(pts, time_base) for `frame`: its own time base, or 1 / rate where it has none."""
        time_base = frame.time_base or 1 / self._rate
        last: int | None = None
        if self._last is not None:
            last_pts, last_base = self._last
            last = (
                last_pts if last_base == time_base else math.floor(last_pts * last_base / time_base)
            )
        if (
            frame.pts is not None
            and frame.time_base is not None
            and (last is None or frame.pts > last)
        ):
            return frame.pts, time_base
        step = max(1, round(1 / (self._rate * time_base)))
        return (0 if last is None else last + step), time_base

    def take(self, pts: int, time_base: Fraction) -> None:
        self._last = (pts, time_base)

    def stamp(self, frame: RedactedFrame) -> tuple[int, Fraction]:
        """`peek` and `take` at once."""
        stamped = self.peek(frame)
        self.take(*stamped)
        return stamped
