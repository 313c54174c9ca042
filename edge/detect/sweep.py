"""The fine pass's regions over a video frame: a grid of overlapping regions, each searched at a
larger scale than the whole-frame pass, for faces too small for it (a body camera's bystanders
are 15-40 px at 720p).

Each region is one grid cell grown by `margin` frame pixels on every side, so a face up to
`2 * margin` px lies whole inside at least one region; larger faces are the whole-frame pass's.
How a run spreads them over frames is `edge.run.schedule`'s.
"""

from __future__ import annotations

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels


def grid_regions(height: int, width: int, rows: int, cols: int, margin: int) -> list[Region]:
    """rows x cols cells covering the frame, each grown by `margin` px (clipped to the frame),
    in row-major order."""
    if rows < 1 or cols < 1 or margin < 0:
        raise ValueError("a grid needs rows, cols >= 1 and margin >= 0")
    out: list[Region] = []
    for r in range(rows):
        y0, y1 = round(r * height / rows) - margin, round((r + 1) * height / rows) + margin
        for c in range(cols):
            x0, x1 = round(c * width / cols) - margin, round((c + 1) * width / cols) + margin
            out.append((max(0, x0), max(0, y0), min(width, x1), min(height, y1)))
    return out
