"""The redaction stage: the only code that turns a `RawFrame` into a `RedactedFrame`."""

from __future__ import annotations

import numpy as np

from edge.config import RedactConfig
from edge.detect.detections import Detections
from edge.frames import REDACTION_STAGE, RawFrame, RedactedFrame
from edge.redact.methods import METHODS
from edge.redact.shapes import face_ellipses


class Redactor:
    """Redacts detected faces in place; `obscure` covers a whole frame it cannot vouch for."""

    def __init__(self, cfg: RedactConfig) -> None:
        self.cfg = cfg
        self._method = METHODS[cfg.method]
        self._rng = np.random.default_rng()

    def redact(self, frame: RawFrame, faces: Detections) -> RedactedFrame:
        pixels = frame.pixels
        if not pixels.flags.writeable:
            pixels = pixels.copy()
        for ellipse in face_ellipses(faces, self.cfg.mask_scale):
            self._method(pixels, ellipse, self.cfg.color, self._rng)
        return self._mint(frame, pixels, faces=len(faces), obscured=False)

    def obscure(self, frame: RawFrame) -> RedactedFrame:
        """Fail closed: nothing of the frame survives."""
        pixels = np.empty_like(frame.pixels)
        pixels[...] = np.asarray(self.cfg.color, dtype=np.uint8)
        return self._mint(frame, pixels, faces=0, obscured=True)

    @staticmethod
    def _mint(frame: RawFrame, pixels: np.ndarray, *, faces: int, obscured: bool) -> RedactedFrame:
        return RedactedFrame(
            pixels,
            index=frame.index,
            pts=frame.pts,
            time_base=frame.time_base,
            faces=faces,
            obscured=obscured,
            capability=REDACTION_STAGE,
            captured=frame.captured,
        )
