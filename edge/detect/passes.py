"""Detector passes: the pieces a detector searches a frame in, so that a run can spread them.

A detector that covers a frame in several passes (CenterFace: the whole frame small, for the large
faces, and a grid of regions at a larger scale, for the small ones) says what they are
(`Searching.passes`) and runs any of them on request (`Searching.search`). Each pass answers for
the faces of some sizes in its region: a face it would be expected to find there. The run
decides which passes each frame gets (`edge.run.schedule`), and uses `answers_for` to tell
whether a face that was not found again was looked for where it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.detect.detections import Detections
from edge.frames import Pixels

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels
Kind = Literal["whole", "fine"]
ALIGN = 32  # CenterFace's input sides are whole multiples of this (its coarsest stride)


def aligned(length: float) -> int:
    """`length` (model px) rounded to the nearest whole multiple of `ALIGN`, at least one."""
    return max(ALIGN, round(length / ALIGN) * ALIGN)


def shrunk(image: Pixels, width: int, height: int, *, exact: bool) -> Pixels:
    """`image` at `width` x `height` for a model pass: averaged over the pixels each model pixel
    covers where it shrinks (INTER_AREA), bilinear where it grows. `exact`: at the size asked
    for (a still image). Otherwise (video, where every millisecond of a frame counts), where it
    shrinks by 2 or more, over k x k blocks, k the ratio rounded (OpenCV's fast path: the whole
    frame at a quarter), and then stretched bilinearly by the few percent that round the size
    to `ALIGN`: averaging at a ratio that is not whole costs about 2.5 times as much, and the
    detector finds the same faces on either (docs/measurements.md, "Keeping up"). The fine
    regions (3/4) keep the exact average: a bilinear shrink there costs 15-30 px faces at dusk."""
    h, w = image.shape[:2]
    ratio = min(w / width, h / height)
    k = 1 if exact or ratio < 2 else round(ratio)
    while k > 1 and (w % k or h % k):
        k -= 1
    if k < 2:
        interpolation = cv2.INTER_AREA if width < w else cv2.INTER_LINEAR
        return np.asarray(cv2.resize(image, (width, height), interpolation=interpolation))
    blocks = cv2.resize(image, (w // k, h // k), interpolation=cv2.INTER_AREA)
    if blocks.shape[:2] == (height, width):
        return np.asarray(blocks)
    return np.asarray(cv2.resize(blocks, (width, height), interpolation=cv2.INTER_LINEAR))


@dataclass(frozen=True, slots=True)
class Pass:
    """One region of a frame, searched at one input size, for faces of `faces` px (the longer
    side of the box, smallest to largest) lying whole inside `inner`."""

    kind: Kind
    region: Region
    size: tuple[int, int]  # the model's input, height x width
    faces: tuple[float, float]
    inner: Region  # where a face of those sizes lies whole inside the region

    def answers_for(self, box: Sequence[float] | NDArray[np.floating[Any]]) -> bool:
        """Whether a face at `box` (x0, y0, x1, y1) is one this pass should find."""
        x0, y0, x1, y1 = (float(v) for v in box)
        size = max(x1 - x0, y1 - y0)
        ix0, iy0, ix1, iy1 = self.inner
        return (
            self.faces[0] <= size <= self.faces[1]
            and ix0 <= x0
            and iy0 <= y0
            and x1 <= ix1
            and y1 <= iy1
        )


@runtime_checkable
class Searching(Protocol):
    """A detector whose coverage of a frame a run can spread over several frames."""

    name: str

    def passes(self, height: int, width: int) -> list[Pass]:
        """Every pass that covers a frame of this size once: its whole-frame pass(es) first, then
        its fine passes in a fixed order."""

    def search(self, image: Pixels, passes: Sequence[Pass], cycle: int | None) -> Detections:
        """The detections of `passes` on `image`, in frame pixels, duplicates suppressed.
        `cycle`: the sweep cycle the frame is in (`edge.detect.exposure`). Raises on failure."""
