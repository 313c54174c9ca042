"""Where to redact: one enlarged ellipse per detected face, covering the head, not just the box."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.detect.detections import Detections

# Face boxes run from brow to chin; the head reaches higher. Lift the ellipse's centre by this
# share of the box height so forehead and hairline are inside it.
_LIFT = 0.08


@dataclass(frozen=True, slots=True)
class Ellipse:
    cx: int
    cy: int
    ax: int  # half-width
    ay: int  # half-height

    def bounds(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the ellipse's bounding rectangle, clipped to the frame."""
        return (
            max(0, self.cx - self.ax),
            max(0, self.cy - self.ay),
            min(width, self.cx + self.ax + 1),
            min(height, self.cy + self.ay + 1),
        )


def face_ellipses(faces: Detections, scale: float) -> list[Ellipse]:
    out = []
    for x0, y0, x1, y1 in faces.xyxy.tolist():
        w, h = x1 - x0, y1 - y0
        if w <= 0 or h <= 0:
            continue
        out.append(
            Ellipse(
                cx=round((x0 + x1) / 2),
                cy=round((y0 + y1) / 2 - _LIFT * h),
                ax=max(1, round(w * scale / 2)),
                ay=max(1, round(h * scale / 2)),
            )
        )
    return out


def ellipse_mask(e: Ellipse, height: int, width: int) -> NDArray[np.bool_]:
    """Boolean mask of the ellipse within its clipped bounding rectangle."""
    x0, y0, x1, y1 = e.bounds(height, width)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.ellipse(mask, (e.cx - x0, e.cy - y0), (e.ax, e.ay), 0, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


def coverage_mask(faces: Detections, scale: float, height: int, width: int) -> NDArray[np.bool_]:
    """Full-frame mask of every pixel the redaction stage will replace."""
    mask = np.zeros((height, width), np.uint8)
    for e in face_ellipses(faces, scale):
        cv2.ellipse(mask, (e.cx, e.cy), (e.ax, e.ay), 0, 0, 360, 1, thickness=-1)
    return mask.astype(bool)
