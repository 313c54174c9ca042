"""The face-protection measure.

A face is *protected* when, in every quadrant of the ellipse inscribed in its box (the whole ellipse
for faces under 24 px), the output keeps less than 0.4 of the input's detail. Detail is the grey
image minus its Gaussian blur with sigma = min(w, h) / 12; what the output "keeps" is the
correlation of input and output detail divided by the larger of the two energies. Re-encoding keeps
about 1, a solid fill 0, a light blur most of it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.frames import Pixels

KEEP_LIMIT = 0.4
WHOLE_ELLIPSE_BELOW = 24.0


def grey(image: Pixels) -> NDArray[np.float32]:
    if image.ndim == 2:
        return image.astype(np.float32)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def detail(image: NDArray[np.float32], sigma: float) -> NDArray[np.float32]:
    """The grey image minus its Gaussian blur: what a redaction has to destroy."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return image - blurred


def kept_share(d_in: NDArray[np.float32], d_out: NDArray[np.float32]) -> float | None:
    """How much of the input detail `d_in` survives in `d_out` (same pixels, flattened): their
    correlation over the larger energy. None where neither holds any detail."""
    energy = max(float(np.dot(d_in, d_in)), float(np.dot(d_out, d_out)))
    if energy <= 1e-6:
        return None
    return float(np.dot(d_in, d_out)) / energy


def kept_detail(before: Pixels, after: Pixels, box: tuple[float, float, float, float]) -> float:
    """The largest share of detail kept over the face's ellipse regions (0 = none, 1 = all)."""
    x, y, w, h = box
    height, width = before.shape[:2]
    sigma = max(0.5, min(w, h) / 12.0)
    margin = math.ceil(3 * sigma)
    x0, y0 = max(0, math.floor(x) - margin), max(0, math.floor(y) - margin)
    x1, y1 = min(width, math.ceil(x + w) + margin), min(height, math.ceil(y + h) + margin)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    d_in = detail(grey(before[y0:y1, x0:x1]), sigma)
    d_out = detail(grey(after[y0:y1, x0:x1]), sigma)

    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    cx, cy = x + w / 2, y + h / 2
    inside = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1.0
    if min(w, h) < WHOLE_ELLIPSE_BELOW:
        regions = [inside]
    else:
        left, top = xx < cx, yy < cy
        regions = [inside & (left == a) & (top == b) for a in (True, False) for b in (True, False)]
    worst = 0.0
    for region in regions:
        if not region.any():
            continue
        kept = kept_share(d_in[region], d_out[region])
        if kept is not None:
            worst = max(worst, kept)
    return worst


def is_protected(before: Pixels, after: Pixels, box: tuple[float, float, float, float]) -> bool:
    return kept_detail(before, after, box) < KEEP_LIMIT
