"""The detection stage's one interface."""

from __future__ import annotations

from typing import Protocol

from edge.detect.detections import Detections
from edge.frames import Pixels


class FaceDetector(Protocol):
    """Finds faces in a BGR uint8 image. Raises on failure; the pipeline then fails closed."""

    name: str

    def detect(self, image: Pixels) -> Detections: ...
