"""Several detectors on one frame, every box of every one kept: the union of their masks."""

from __future__ import annotations

from collections.abc import Sequence

from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.frames import Pixels


class Ensemble:
    def __init__(self, members: Sequence[FaceDetector]) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two detectors")
        self.members = tuple(members)
        self.name = "+".join(m.name for m in self.members)

    def detect(self, image: Pixels) -> Detections:
        # No suppression across members: a box one detector draws larger than another's is
        # kept, so the union of masks never shrinks. Any member's failure fails the frame.
        return Detections.concat([m.detect(image) for m in self.members])
