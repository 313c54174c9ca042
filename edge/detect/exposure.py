"""What the detector sees of a dark picture: a brightened copy of its input.

Detectors are trained mostly on well-lit photos. In a dim, noisy frame a face's features sit in
the bottom few dozen levels, and the darker the skin, the fewer levels it has: at dusk dark
faces are the first ones missed. So each pass's input (the whole frame or one region, already
resized to the model's size) whose mean luma is below `dark_below` is lifted by a gamma curve
that takes its mean to `target`; the same curve on every channel, so hues stay put.

Only the detector's input is changed: boxes are found on the lifted copy and the redaction acts
on the original pixels. The decision uses the picture's brightness alone, never anything about a
face or a person in it. Modes:
- "both": the dark input is searched as it is and lifted (a second model pass on dark inputs
  only; the boxes of both are kept);
- "alternate": video frames search a dark input as it is on one sweep cycle and lifted on the
  next, so the union of both takes no extra pass and the tracker holds a face between the two;
  still images (one frame, no tracker) search both;
- "lift": the lifted copy alone (no extra pass; a face found only as it is can be lost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edge.frames import Pixels

_LUMA_BGR = (0.114, 0.587, 0.299)  # BT.601 weights, in OpenCV's channel order
MODES = ("both", "alternate", "lift")
_STRONGEST = 0.3  # the lowest gamma used: deep noise stays below mid-grey


@lru_cache(maxsize=64)
def _curve(gamma: float) -> np.ndarray:
    levels = np.arange(256, dtype=np.float64) / 255.0
    return np.clip(np.rint(255.0 * levels**gamma), 0, 255).astype(np.uint8)


@dataclass(frozen=True, slots=True)
class LowLight:
    """How a dark pass input is brightened. `dark_below` and `target` are luma levels 0-255."""

    mode: str = "both"
    dark_below: float = 80.0
    target: float = 110.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"low-light mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 < self.dark_below < self.target < 255.0:
            raise ValueError("low light needs 0 < dark_below < target < 255")

    def gamma(self, mean_luma: float) -> float | None:
        """The gamma that takes `mean_luma` to `target`; None when the input is not dark."""
        if mean_luma >= self.dark_below:
            return None
        mean = max(mean_luma, 1.0) / 255.0
        wanted = math.log(self.target / 255.0) / math.log(mean)
        return round(max(_STRONGEST, wanted), 2)  # rounded: a few dozen curves, cached

    def inputs(self, small: np.ndarray, cycle: int | None = None) -> list[Pixels]:
        """What the model is run on for this pass input: itself; or, when dark, itself and its
        lifted copy, or one of them. `cycle`: a video frame's sweep cycle (None: a still)."""
        seen = np.asarray(small, dtype=np.uint8)
        b, g, r = cv2.mean(seen)[:3]
        gamma = self.gamma(_LUMA_BGR[0] * b + _LUMA_BGR[1] * g + _LUMA_BGR[2] * r)
        if gamma is None:
            return [seen]
        if self.mode == "alternate" and cycle is not None and cycle % 2 == 0:
            return [seen]
        lifted = np.asarray(cv2.LUT(seen, _curve(gamma)), dtype=np.uint8)
        if self.mode == "lift" or (self.mode == "alternate" and cycle is not None):
            return [lifted]
        return [seen, lifted]
