"""What the detector sees of a dark picture: a brightened copy of its input.

Detectors are trained mostly on well-lit photos. In a dim, noisy frame a face's features sit in
the bottom few dozen levels, and the darker the skin, the fewer levels it has: at dusk dark
faces are the first ones missed. So each pass's input (the whole frame or one region, already
resized to the model's size) that is dark is lifted by a gamma curve that takes its mean to
`target`; the same curve on every channel, so hues stay put.

Darkness is decided where a face can be, not for the input as a whole: the input is cut into
cells of 32 model pixels and a cell whose mean luma is below `dark_below` is dark. A 12 px face
hardly moves the mean of a frame, and a shadowed doorway can stand in a bright street. When the
whole input is dark (its mean is below `dark_below`) it is lifted whole, as one. Otherwise each
area of at least `_MIN_AREA` touching dark cells (a shadow large enough to hold a face and what
is around it) is lifted with the curve of its own mean: as a crop of its own where the model
takes any input size (CenterFace), or in place on a copy of the input (`whole=True`).

Only the detector's input is changed: boxes are found on the lifted copy and the redaction acts
on the original pixels. The decision uses the picture's brightness alone, never anything about a
face or a person in it. Modes:
- "both": the dark input (or area) is searched as it is and lifted (a second model pass on dark
  pixels only; the boxes of both are kept);
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

MODES = ("both", "alternate", "lift")
_STRONGEST = 0.3  # the lowest gamma used: deep noise stays below mid-grey
CELL = 32  # model px: the patches whose brightness decides
_MIN_AREA = 3  # cells: a dark area narrower or shorter than this is not lifted on its own


@dataclass(frozen=True, slots=True)
class Look:
    """One model input of a pass: `pixels`, whose (0, 0) is at (`x0`, `y0`) of the pass input."""

    pixels: Pixels
    x0: int = 0
    y0: int = 0


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

    def looks(
        self, small: np.ndarray, cycle: int | None = None, *, whole: bool = False
    ) -> list[Look]:
        """What the model is run on for this pass input: itself; or, where it is dark, itself
        and its lifted copy (or lifted areas), or one of them. `cycle`: a video frame's sweep
        cycle (None: a still). `whole`: every look the size of the input."""
        seen = np.asarray(small, dtype=np.uint8)
        luma = np.asarray(cv2.cvtColor(seen, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        gamma = self.gamma(float(luma.mean()))
        areas = [] if gamma is not None else self._dark_areas(luma)
        if gamma is None and not areas:
            return [Look(seen)]
        if self.mode == "alternate" and cycle is not None and cycle % 2 == 0:
            return [Look(seen)]
        if gamma is not None:
            lifted = [Look(_lifted(seen, gamma))]
        else:
            lifted = [
                Look(_lifted(seen[y0:y1, x0:x1], area_gamma), x0, y0)
                for (x0, y0, x1, y1), area_gamma in areas
            ]
            if whole or self.mode != "both":
                lifted = [Look(_pasted(seen, lifted))]
        if self.mode == "lift" or (self.mode == "alternate" and cycle is not None):
            return lifted
        return [Look(seen), *lifted]

    def lifted(self, pixels: np.ndarray) -> Pixels:
        """`pixels` lifted as a dark input of their brightness would be; one that is not dark
        gets the mildest lift (what a second look tries, `edge.detect.second_look`)."""
        luma = cv2.cvtColor(np.asarray(pixels, np.uint8), cv2.COLOR_BGR2GRAY)
        gamma = self.gamma(min(float(luma.mean()), self.dark_below - 1.0))
        assert gamma is not None  # below dark_below
        return _lifted(pixels, gamma)

    def inputs(self, small: np.ndarray, cycle: int | None = None) -> list[Pixels]:
        """`looks` for a model that takes one input size: each the size of `small`."""
        return [look.pixels for look in self.looks(small, cycle, whole=True)]

    def _dark_areas(self, luma: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """Areas (x0, y0, x1, y1, in input px, on the cell grid) around each connected group of
        dark cells at least `_MIN_AREA` cells wide and high, grown by one cell; each with the
        gamma that takes its dark cells' mean to `target`."""
        height, width = luma.shape
        rows, cols = height // CELL, width // CELL
        if rows < _MIN_AREA or cols < _MIN_AREA:
            return []
        cells = cv2.resize(
            luma[: rows * CELL, : cols * CELL], (cols, rows), interpolation=cv2.INTER_AREA
        )
        dark = (cells < self.dark_below).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
        out = []
        for label in range(1, count):
            x, y, w, h, _ = stats[label]
            if w < _MIN_AREA or h < _MIN_AREA:
                continue
            gamma = self.gamma(float(cells[labels == label].mean()))
            assert gamma is not None  # the mean of dark cells is dark
            x0, y0 = max(0, x - 1) * CELL, max(0, y - 1) * CELL
            x1 = width if x + w + 1 >= cols else (x + w + 1) * CELL
            y1 = height if y + h + 1 >= rows else (y + h + 1) * CELL
            out.append(((int(x0), int(y0), int(x1), int(y1)), gamma))
        return out


def _lifted(pixels: np.ndarray, gamma: float) -> Pixels:
    return np.asarray(cv2.LUT(pixels, _curve(gamma)), dtype=np.uint8)


def _pasted(seen: Pixels, areas: list[Look]) -> Pixels:
    out = seen.copy()
    for look in areas:
        h, w = look.pixels.shape[:2]
        out[look.y0 : look.y0 + h, look.x0 : look.x0 + w] = look.pixels
    return out
