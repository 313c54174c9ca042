"""Over-redaction: how much textured picture away from any face the output destroyed.

Recall alone rewards covering everything, so the evaluation also measures the damage. It is
defined on images whose annotation is exhaustive (every real face has a `faces` or `ignore` box),
since only there is every face known and everything else known to be not a face, and in the same
way on every annotated frame of an exhaustively annotated video:

- The image is cut into a grid of `CELL_PX` square cells from its top-left corner; cells that do
  not fit whole at the right and bottom edges are left out.
- Cells near a face are not scored: a cell is left out when it touches a face's box grown by
  `MARGIN` times the box's width on each side and its height above and below, for every `faces`
  and `ignore` box. Redaction masks are ellipses 1.4x the detected box, lifted towards the hair,
  and a detector's box is not the annotator's; at 1x the zone still holds the default mask of a
  detection twice the annotated size. The zone is fixed, not taken from the configuration, so a
  larger `mask_scale` shows up as the damage it does.
- A cell is *textured* when the root-mean-square of its input detail (the protection measure's
  grey image minus its Gaussian blur, here with sigma `DETAIL_SIGMA` px over the whole image) is
  at least `TEXTURE_RMS` grey levels. Flat sky, walls and JPEG noise stay below that; on the
  development set about half of all cells are textured.
- A textured cell is *destroyed* when the output keeps less than `KEEP_LIMIT` (0.4) of its detail,
  the same share and the same formula that decide whether a face is protected. A cell only partly
  under a mask keeps roughly its uncovered share, so it needs most of its area replaced to count.

Over-redaction is destroyed textured cells over textured cells, summed over the images (and,
reported apart, over the video frames). A frame covered whole because the pipeline failed closed
destroys every cell, and counts that way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.evaluate.evalset import Box
from edge.evaluate.protection import KEEP_LIMIT, detail, grey
from edge.frames import Pixels

CELL_PX = 16
MARGIN = 1.0
DETAIL_SIGMA = 2.0
TEXTURE_RMS = 4.0


@dataclass(frozen=True)
class CellCount:
    textured: int = 0
    destroyed: int = 0

    def __add__(self, other: CellCount) -> CellCount:
        return CellCount(self.textured + other.textured, self.destroyed + other.destroyed)

    @property
    def share(self) -> float | None:
        return self.destroyed / self.textured if self.textured else None


def near_faces(
    rows: int, cols: int, boxes: Iterable[Box], cell: int = CELL_PX
) -> NDArray[np.bool_]:
    """Cells (rows x cols grid) touching any box grown by `MARGIN` of its size on every side."""
    out = np.zeros((rows, cols), dtype=bool)
    for x, y, w, h in boxes:
        x0, x1 = x - MARGIN * w, x + w + MARGIN * w
        y0, y1 = y - MARGIN * h, y + h + MARGIN * h
        c0, c1 = max(0, math.floor(x0 / cell)), min(cols, math.ceil(x1 / cell))
        r0, r1 = max(0, math.floor(y0 / cell)), min(rows, math.ceil(y1 / cell))
        if c1 > c0 and r1 > r0:
            out[r0:r1, c0:c1] = True
    return out


def _cell_sums(values: NDArray[np.float32], rows: int, cols: int, cell: int) -> NDArray[np.float64]:
    grid = values[: rows * cell, : cols * cell].astype(np.float64)
    return np.asarray(grid.reshape(rows, cell, cols, cell).sum(axis=(1, 3)), dtype=np.float64)


def over_redaction(
    before: Pixels, after: Pixels, keep_out: Iterable[Box], cell: int = CELL_PX
) -> CellCount:
    """Textured and destroyed cells of one image; `keep_out` are its `faces` and `ignore` boxes."""
    if before.shape != after.shape:
        raise ValueError(f"output shape {after.shape} differs from input {before.shape}")
    rows, cols = before.shape[0] // cell, before.shape[1] // cell
    if rows == 0 or cols == 0:
        return CellCount()
    d_in = detail(grey(before), DETAIL_SIGMA)
    d_out = detail(grey(after), DETAIL_SIGMA)
    energy_in = _cell_sums(d_in * d_in, rows, cols, cell)
    energy_out = _cell_sums(d_out * d_out, rows, cols, cell)
    cross = _cell_sums(d_in * d_out, rows, cols, cell)
    textured = (energy_in >= TEXTURE_RMS**2 * cell * cell) & ~near_faces(rows, cols, keep_out, cell)
    # kept_share's formula, over all cells at once; textured cells always hold some energy.
    kept = cross / np.maximum(np.maximum(energy_in, energy_out), 1e-6)
    destroyed = textured & (kept < KEEP_LIMIT)
    return CellCount(int(textured.sum()), int(destroyed.sum()))
