"""Overlapping tiles, so a detector can search a large or upscaled image piece by piece.

Any object smaller than `overlap` lies whole inside at least one tile.
"""

from __future__ import annotations


def tile_grid(height: int, width: int, side: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) tiles of at most `side` px covering the image, neighbours overlapping by
    at least `overlap` px. One tile when the image fits."""
    if side <= overlap:
        raise ValueError("tile side must exceed the overlap")
    rows, cols = _spans(height, side, overlap), _spans(width, side, overlap)
    return [(x0, y0, x1, y1) for y0, y1 in rows for x0, x1 in cols]


def _spans(length: int, side: int, overlap: int) -> list[tuple[int, int]]:
    if length <= side:
        return [(0, length)]
    count = -(-(length - overlap) // (side - overlap))  # ceil: tiles needed along this axis
    step = (length - side) / (count - 1)
    return [(round(i * step), round(i * step) + side) for i in range(count)]
