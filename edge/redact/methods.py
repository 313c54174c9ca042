"""How to redact one ellipse. `fill` and `noise` keep nothing of the face's pixels; `blur` and
`pixelate` are derived from them and are weaker (a blurred face can be partly restored)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.frames import Pixels
from edge.redact.shapes import Ellipse, ellipse_mask

Method = Callable[[Pixels, Ellipse, tuple[int, int, int], np.random.Generator], None]


def fill(image: Pixels, e: Ellipse, color: tuple[int, int, int], rng: np.random.Generator) -> None:
    cv2.ellipse(image, (e.cx, e.cy), (e.ax, e.ay), 0, 0, 360, color, thickness=-1)


def _replace_inside(image: Pixels, e: Ellipse, make: Callable[[Pixels], NDArray[Any]]) -> None:
    """Replace the pixels inside the ellipse with `make(roi)`, computed over its bounding box."""
    x0, y0, x1, y1 = e.bounds(*image.shape[:2])
    roi = image[y0:y1, x0:x1]
    mask = ellipse_mask(e, *image.shape[:2])
    roi[mask] = make(roi)[mask]


def noise(image: Pixels, e: Ellipse, color: tuple[int, int, int], rng: np.random.Generator) -> None:
    _replace_inside(image, e, lambda roi: rng.integers(0, 256, size=roi.shape, dtype=np.uint8))


def blur(image: Pixels, e: Ellipse, color: tuple[int, int, int], rng: np.random.Generator) -> None:
    # Kernel scaled to the face: a sigma of a quarter of the ellipse width leaves no features.
    sigma = max(2.0, e.ax / 2.0)
    _replace_inside(
        image,
        e,
        lambda roi: cv2.GaussianBlur(roi, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE),
    )


def _mosaic(roi: Pixels) -> NDArray[Any]:
    # At most 5 blocks across the head: too coarse for eyes, nose or mouth to survive.
    blocks_x = max(1, min(5, roi.shape[1] // 4))
    blocks_y = max(1, round(blocks_x * roi.shape[0] / max(1, roi.shape[1])))
    small = cv2.resize(roi, (blocks_x, blocks_y), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_NEAREST)


def pixelate(
    image: Pixels, e: Ellipse, color: tuple[int, int, int], rng: np.random.Generator
) -> None:
    _replace_inside(image, e, _mosaic)


METHODS: dict[str, Method] = {"fill": fill, "noise": noise, "blur": blur, "pixelate": pixelate}
