"""A live source's deadlines: how long a frame may wait to be vouched for, and what becomes of
one that waits too long (dropped or fully obscured, never passed clear)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from typing import Literal

from edge.config import LiveConfig
from edge.frames import RawFrame, RedactedFrame
from edge.run.report import Timings

# Of `max_latency_ms`, how long a frame may wait for its own searches (`edge.run.pace` plans the
# sweep within it); the rest is for the queues, redaction and the sink.
LATENCY_USE = 0.75
# Of `max_latency_ms`, how long a frame vouched for is held back before it leaves the detector, so
# that a face the detector finds only on a later search (it missed it before) is followed back and
# drawn on it. Less than `LATENCY_USE`: on a device that is just keeping up, frames leave as they
# are vouched for (at 0.75, the Pi 5 stand-in lost twice the frames, late at the sink).
HOLD = 0.6
_RECENT = 30  # sink writes a frame's own write is judged by


@dataclass(frozen=True)
class Realtime:
    """A live source's rules: each frame has `max_latency_ms` from capture to be vouched for,
    and is held back until `hold_ms` after its capture (or its window is full) once it is."""

    max_latency_ms: float = 150.0
    late: Literal["drop", "obscure"] = "drop"
    queue: int = 2
    hold_ms: float = 0.0

    @classmethod
    def of(cls, cfg: LiveConfig) -> Realtime:
        return cls(cfg.max_latency_ms, cfg.late, cfg.queue, HOLD * cfg.max_latency_ms)

    def age_ms(self, raw: RawFrame | RedactedFrame) -> float:
        return 0.0 if raw.captured is None else (time.monotonic() - raw.captured) * 1000.0

    def is_late(self, raw: RawFrame | RedactedFrame, ahead_ms: float = 0.0) -> bool:
        """Past its deadline, or past it `ahead_ms` from now."""
        return self.age_ms(raw) + ahead_ms > self.max_latency_ms

    def misses_sink(self, frame: RedactedFrame, writes: Timings) -> bool:
        """Would `frame` reach the sink past its deadline? Judged by the slowest but one of the
        sink's last `_RECENT` writes (an x264 keyframe takes longer than the frames between).
        Only where late frames are dropped: an obscured late frame is still written."""
        if self.late != "drop" or frame.captured is None:
            return False
        recent = sorted(islice(reversed(writes.values), _RECENT))
        return self.is_late(frame, recent[-2] if len(recent) > 1 else 0.0)

    def held_enough(self, raw: RawFrame) -> bool:
        return self.age_ms(raw) >= self.hold_ms
