"""A second look at what is faint: still-image candidates just under the threshold, searched
again close up.

A small face in poor light, and a dark face most of all, often reaches the detector as a heatmap
peak under the threshold. Each such candidate (score from `faint_from` up to the threshold, the
strongest `most` of them) is cut out with its surroundings (`_CONTEXT` times its size), scaled
up so that it is about `_WANTED` px to the model, and searched three ways: as it is, gamma-lifted
by its own brightness (`edge.detect.exposure`), and with local contrast (CLAHE on L*). A box that
the second look finds at the threshold, centred on the candidate and of about its size, is
kept. Every kept box is redacted like any other; nothing of the crop is kept.

What it costs (docs/measurements.md, "Equal protection at dusk"): three small model passes a
candidate, and boxes on texture that looks like a face close up: on the dusk size sweep, the
second look keeps about as many false candidates as true ones. It runs on still images only,
where a false box is one small mask; in video it would become a track held over frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.detect.detections import Detections
from edge.detect.exposure import LowLight
from edge.detect.passes import aligned
from edge.frames import Pixels

# A model pass on a whole input at its own size: detections at the threshold, in its pixels.
Search = Callable[[Pixels], Detections]

_CONTEXT = 3.0  # the crop's side, in candidate sizes: the face and what is around it
_WANTED = 40.0  # px: the candidate's size to the model, where CenterFace scores faces surely
_MOST_UP = 6.0  # the most a crop is scaled up
_NEAR = 0.75  # a second-look box's centre within this many candidate sizes of the candidate's
_SIZE_RATIO = 2.5  # and its size within this factor of the candidate's


@dataclass(frozen=True, slots=True)
class SecondLook:
    """Which candidates are looked at again: scores from `faint_from` up to the detector's
    threshold, the strongest `most` of them."""

    faint_from: float = 0.04
    most: int = 16

    def __post_init__(self) -> None:
        if not 0.0 < self.faint_from < 1.0 or self.most < 1:
            raise ValueError("a second look needs 0 < faint_from < 1 and most >= 1")


def look_again(
    image: Pixels,
    faint: Detections,
    search: Search,
    low_light: LowLight,
    look: SecondLook,
) -> tuple[Detections, int]:
    """The boxes a second look keeps (in `image` pixels), and the model passes it took."""
    order = np.argsort(-faint.scores, kind="stable")[: look.most]
    kept_boxes: list[np.ndarray] = []
    kept_scores: list[float] = []
    passes = 0
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
    for i in order:
        box = faint.xyxy[i].astype(np.float64)
        crop, (x0, y0), scale = _close_up(image, box)
        best: tuple[float, np.ndarray] | None = None
        for seen in _three_ways(crop, low_light, clahe):
            passes += 1
            found = search(seen)
            hit = _nearest(found, box, (x0, y0), scale)
            if hit is not None and (best is None or hit[0] > best[0]):
                best = hit
        if best is not None:
            kept_scores.append(best[0])
            kept_boxes.append(best[1])
    if not kept_boxes:
        return Detections.empty(), passes
    return (
        Detections(
            np.asarray(kept_boxes, dtype=np.float32), np.asarray(kept_scores, dtype=np.float32)
        ),
        passes,
    )


def _close_up(
    image: Pixels, box: np.ndarray
) -> tuple[Pixels, tuple[int, int], tuple[float, float]]:
    """The candidate with its surroundings, scaled up; its origin in `image` and the scale of
    each axis (the crop is scaled to whole multiples of 32 px, so they differ a little)."""
    height, width = image.shape[:2]
    side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(side * _CONTEXT, 24.0) / 2
    x0, y0 = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
    x1, y1 = min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half))
    factor = min(_MOST_UP, max(1.0, _WANTED / side))
    size = (aligned((x1 - x0) * factor), aligned((y1 - y0) * factor))
    crop = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    return np.asarray(crop, np.uint8), (x0, y0), (size[0] / (x1 - x0), size[1] / (y1 - y0))


def _three_ways(crop: Pixels, low_light: LowLight, clahe: cv2.CLAHE) -> list[Pixels]:
    """As it is; lifted as a dark input of its brightness would be (at least the mildest
    lift); with local contrast."""
    lifted = low_light.lifted(crop)
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)
    lab[..., 0] = clahe.apply(lab[..., 0])
    contrast = np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR), np.uint8)
    return [crop, lifted, contrast]


def _nearest(
    found: Detections, box: np.ndarray, origin: tuple[int, int], scale: tuple[float, float]
) -> tuple[float, np.ndarray] | None:
    """The best-scoring box of `found` (crop pixels) that is where the candidate is and about
    its size, in image pixels; None when there is none."""
    if len(found) == 0:
        return None
    xyxy = found.xyxy.astype(np.float64) / np.array([*scale, *scale]) + np.array(
        [*origin, *origin], np.float64
    )
    side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    sides = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    near = (
        (np.abs(centre - [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) <= _NEAR * side).all(
            axis=1
        )
        & (sides <= _SIZE_RATIO * side)
        & (sides >= side / _SIZE_RATIO)
    )
    if not near.any():
        return None
    k = int(np.argmax(np.where(near, found.scores, -1.0)))
    return float(found.scores[k]), xyxy[k]
