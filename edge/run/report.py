"""What a run counts: frames in and out, each frame failed closed by its cause, and each stage's
time per frame. Counts and timings only, never a picture or a box: the audit trail, the status
file and `veil eval` read it."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from edge.sinks.base import Published

_KEPT = 100_000  # timings kept for percentiles (a day at 30 frames/s keeps the last hour)


class Timings:
    """Milliseconds of one kind (a stage, capture-to-sink), the last `_KEPT` of them."""

    def __init__(self) -> None:
        self.values: deque[float] = deque(maxlen=_KEPT)
        self.count = 0  # every timing ever added, also those the deque has let go

    def add(self, ms: float) -> None:
        self.values.append(ms)
        self.count += 1

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self.values, float), q)) if self.values else 0.0

    def mean(self) -> float:
        return float(np.fromiter(self.values, float).mean()) if self.values else 0.0

    def since(self, count: int) -> list[float]:
        """The timings added after the first `count` (as many as are still kept)."""
        n = min(self.count - count, len(self.values))
        return list(self.values)[len(self.values) - n :] if n > 0 else []


@dataclass
class RunReport:
    frames_in: int = 0
    frames_out: int = 0
    faces: int = 0
    obscured: int = 0  # frames covered whole because they could not be vouched for
    dropped: int = 0  # frames never output (a live source under overload, late, disk full)
    not_taken: int = 0  # live: source frames let pass to keep up (edge.run.pace), not lost
    failures: Counter[str] = field(default_factory=Counter)  # dropped + obscured, by cause
    # Each stage's time per frame. decode (the source's own work, not its wait for a frame)
    # and encode (the sink's write) come from the threaded run (edge.run.conveyor) only.
    decode: Timings = field(default_factory=Timings)
    detect: Timings = field(default_factory=Timings)  # frames searched (the detector not failing)
    track: Timings = field(default_factory=Timings)
    redact: Timings = field(default_factory=Timings)  # frames redacted (not those obscured)
    encode: Timings = field(default_factory=Timings)
    latency: Timings = field(default_factory=Timings)  # capture to sink, live sources
    seconds: float = 0.0
    output: Published | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail(self, cause: str, *, dropped: bool) -> None:
        """One frame dropped, or fully obscured, for `cause` (several threads call this)."""
        with self._lock:
            if dropped:
                self.dropped += 1
            else:
                self.obscured += 1
            self.failures[cause] += 1

    def tally(self) -> tuple[dict[str, int], Counter[str]]:
        """The counts and the causes at one moment: the causes add up to dropped + obscured."""
        with self._lock:
            counts = {
                "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "dropped": self.dropped,
                "obscured": self.obscured,
                "faces": self.faces,
                "not_taken": self.not_taken,
            }
            return counts, Counter(self.failures)

    def stages(self) -> dict[str, Timings]:
        """The per-frame stage timings, in the order a frame goes through them."""
        return {
            "decode": self.decode,
            "detect": self.detect,
            "track": self.track,
            "redact": self.redact,
            "encode": self.encode,
        }
