"""The fine pass over video frames: a grid of overlapping regions, each searched at a larger
scale than the whole-frame pass, for faces too small for it (a body camera's bystanders are
15-40 px at 720p).

Each region is one grid cell grown by `margin` frame pixels on every side, so a face up to
`2 * margin` px lies whole inside at least one region; larger faces are the whole-frame pass's.
A live source may spread the regions over `frames` consecutive frames: region i is searched on
the frames n with n % frames == i % frames, so every part of the picture is searched finely
once every `frames` frames, at 1/frames of the cost per frame; the whole-frame pass may be
spread the same way (`whole_every`). Recorded media search everything on every frame.
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


class Sweep:
    """Which fine regions each successive frame searches."""

    def __init__(
        self, rows: int, cols: int, margin: int, frames: int = 1, whole_every: int = 1
    ) -> None:
        if not 1 <= frames <= rows * cols:
            raise ValueError(f"a sweep of {rows}x{cols} regions spans 1 to {rows * cols} frames")
        if whole_every < 1:
            raise ValueError("whole_every must be at least 1")
        self.rows, self.cols, self.margin, self.frames = rows, cols, margin, frames
        self.whole_every = whole_every
        self._calls = 0
        self.cycle = 0  # how many whole sweeps came before the frame last asked about

    def next_frame(self, height: int, width: int) -> tuple[bool, list[Region]]:
        """Whether this frame gets the whole-frame pass, and its share of the fine regions;
        the next call gets the next share."""
        n = self._calls
        self._calls += 1
        self.cycle = n // max(self.frames, self.whole_every)
        regions = grid_regions(height, width, self.rows, self.cols, self.margin)
        share = [region for i, region in enumerate(regions) if i % self.frames == n % self.frames]
        return n % self.whole_every == 0, share
