"""Following a face from one frame to the next by optical flow, without running the detector.

A box is moved by the median motion of a small grid of points inside it, tracked with pyramidal
Lucas-Kanade between the two frames' grey pictures, and scaled by the median change of the
distances between those points. A point counts only when tracking it forward and back lands
within a pixel or so of where it started, so a box on a face that vanished (a cut, an occlusion)
fails instead of wandering. It costs a fraction of a millisecond a box: only a crop around the
box is looked at, never the whole frame.

This is motion estimation on pixels, nothing more: no point, crop or appearance is kept from
one call to the next, and nothing in it could tell one face from another.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Grey = NDArray[np.uint8]
Box = NDArray[np.float64]  # x0, y0, x1, y1 in frame pixels

_GRID = 4  # points per side of the grid inside a box
_INSET = 0.15  # of the box's size: points stay off its edges, where the background shows
_WINDOW = (15, 15)
_LEVELS = 3
_CRITERIA: Any = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
_FB_LIMIT = 1.5  # px: the most a point may miss its start, tracked forward and back
_MIN_POINTS = 6  # of the 16: fewer agreeing points and the box is not followed
_SCALE = (0.8, 1.25)  # the most a face can grow or shrink from one frame to the next


def follow(before: Grey, after: Grey, box: Box, reach: float) -> Box | None:
    """`box` (on `before`) moved onto `after`, or None when the flow cannot say where it went.
    `reach`: how far (px) it may have moved; the crop looked at is the box grown by that."""
    height, width = before.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    if w < 4 or h < 4:
        return None
    cx0, cy0 = max(0, int(x0 - reach)), max(0, int(y0 - reach))
    cx1, cy1 = min(width, int(np.ceil(x1 + reach))), min(height, int(np.ceil(y1 + reach)))
    if cx1 - cx0 < 16 or cy1 - cy0 < 16:
        return None
    xs = np.linspace(x0 + _INSET * w, x1 - _INSET * w, _GRID) - cx0
    ys = np.linspace(y0 + _INSET * h, y1 - _INSET * h, _GRID) - cy0
    start = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 1, 2).astype(np.float32)
    a = np.ascontiguousarray(before[cy0:cy1, cx0:cx1])
    b = np.ascontiguousarray(after[cy0:cy1, cx0:cx1])
    ahead, ok_ahead, _ = cv2.calcOpticalFlowPyrLK(
        a, b, start, None, winSize=_WINDOW, maxLevel=_LEVELS, criteria=_CRITERIA
    )
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(
        b, a, ahead, None, winSize=_WINDOW, maxLevel=_LEVELS, criteria=_CRITERIA
    )
    p, q = start.reshape(-1, 2), ahead.reshape(-1, 2)
    miss = np.linalg.norm(back.reshape(-1, 2) - p, axis=1)
    good = (ok_ahead.ravel() == 1) & (ok_back.ravel() == 1) & (miss <= _FB_LIMIT)
    if int(good.sum()) < _MIN_POINTS:
        return None
    p, q = p[good], q[good]
    dx, dy = np.median(q - p, axis=0)
    i, j = np.triu_indices(len(p), 1)
    before_d = np.linalg.norm(p[i] - p[j], axis=1)
    after_d = np.linalg.norm(q[i] - q[j], axis=1)
    spaced = before_d > 1.0
    scale = float(np.median(after_d[spaced] / before_d[spaced])) if spaced.any() else 1.0
    scale = min(max(scale, _SCALE[0]), _SCALE[1])
    cx, cy = (x0 + x1) / 2 + float(dx), (y0 + y1) / 2 + float(dy)
    half_w, half_h = w * scale / 2, h * scale / 2
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


def reach(box: Box) -> float:
    """How far a face may move between two frames: its own size (a fast pan), 24 to 160 px."""
    return max(24.0, min(160.0, float(max(box[2] - box[0], box[3] - box[1]))))


def grown(box: Box, factor: float) -> Box:
    """`box` scaled by `factor` about its centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * factor / 2, (box[3] - box[1]) * factor / 2
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh], dtype=np.float64)


def grey(pixels: NDArray[np.uint8]) -> Grey:
    """The picture flow works on (BT.601 luma)."""
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
