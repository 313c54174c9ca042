"""The real detector made to fail on a schedule, for the tests of failing closed: a run's own
count and the audit log's."""

from __future__ import annotations

from edge.config import DetectorConfig
from edge.detect import Detections, build_detector
from edge.frames import Pixels


class FlakyDetector:
    """Test double: the real detector, except that it raises on every `every`-th frame."""

    name = "flaky"

    def __init__(self, every: int) -> None:
        self.inner = build_detector(DetectorConfig())
        self.every = every
        self.calls = 0

    def detect(self, image: Pixels) -> Detections:
        self.calls += 1
        if self.calls % self.every == 1:
            raise RuntimeError("simulated inference failure")
        return self.inner.detect(image)
