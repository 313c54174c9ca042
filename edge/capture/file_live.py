"""`file:PATH` as a live source: a recorded video played like a camera (how tests and benchmarks
drive the live loop).

With `realtime` each frame is released at its own time in the file, as a camera would deliver
it, and Veil then treats it as live (it drops frames rather than make the file wait). Without it
frames come as fast as they decode and nothing is dropped. Frames keep the file's own timestamps,
so a recorded frame traces back to its source frame; with `loop` each replay is shifted by the
file's length, so times keep increasing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from edge.capture.live import RunClock
from edge.capture.video_file import VideoFileSource
from edge.frames import RawFrame


class FileLiveSource:
    kind = "file"

    def __init__(self, path: Path, clock: RunClock, *, realtime: bool, loop: bool) -> None:
        self.path = path
        self.label = f"file:{path.name}"
        self.live = realtime
        self._clock = clock
        self._loop = loop
        self._video = VideoFileSource(path)  # opened now: a bad file fails before the run
        self.width, self.height = self._video.width, self._video.height
        self.rate: Fraction | None = self._video.rate
        self.time_base = self._video.time_base

    def frames(self) -> Iterator[RawFrame]:
        index = 0
        shift = 0  # added to this replay's pts, in the file's time base
        pts0: int | None = None  # the file's first pts
        elapsed = 0.0  # seconds from the first frame to this one, in the file's time
        started = time.monotonic()
        while True:
            last = step = None
            for raw in self._video.frames():
                pts = (raw.pts or 0) + shift
                pts0 = pts if pts0 is None else pts0
                if last is not None:
                    step = pts - last
                    elapsed += self._seconds(step)
                last = pts
                if self.live:
                    due = started + elapsed
                    if self._clock.stop.wait(max(0.0, due - time.monotonic())):
                        return
                elif self._clock.stop.is_set():
                    return
                yield RawFrame(raw.pixels, index, pts, raw.time_base, captured=time.monotonic())
                index += 1
            if not self._loop or last is None or pts0 is None:
                return
            # The next replay starts one frame step after this one's last frame.
            shift = last + (step if step and step > 0 else self._frame_ticks()) - pts0
            self._video.rewind()

    def _seconds(self, ticks: int) -> float:
        """The time between two frames `ticks` apart. Where timestamps do not advance (a file
        whose every pts is 0, or missing), the stream's frame rate (else 30/s) paces it."""
        if ticks > 0 and self.time_base is not None:
            return float(ticks * self.time_base)
        return 1 / float(self.rate or 30)

    def _frame_ticks(self) -> int:
        if self.time_base is None:
            return 1
        return max(1, round(1 / (float(self.rate or 30) * float(self.time_base))))

    def close(self) -> None:
        self._video.close()
