"""The detection stage's one interface."""

from __future__ import annotations

import os
from typing import Protocol

from edge.detect.detections import Detections
from edge.frames import Pixels


class FaceDetector(Protocol):
    """Finds faces in a BGR uint8 image. Raises on failure; the pipeline then fails closed."""

    name: str

    def detect(self, image: Pixels) -> Detections: ...


def inference_threads(threads: int) -> int:
    """`threads`, or with 0 one per core this process may run on (`taskset` and cgroup
    pinning count: os.cpu_count() does not see them)."""
    if threads:
        return threads
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
