"""Following a face from one frame to the next by optical flow, without running the detector.

A box is moved by the median motion of a small grid of points inside it, tracked with pyramidal
Lucas-Kanade between the two frames' grey pictures, and scaled by the median change of the
distances between those points. A point counts only when tracking it forward and back lands
within a pixel or so of where it started, so a box on a face that vanished (a cut, an occlusion)
fails instead of wandering. It costs a fraction of a millisecond a box: only a crop around the
box is looked at, never the whole frame, and a frame's boxes are followed in one call.

This is motion estimation on pixels, nothing more: no point, crop or appearance is kept from
one call to the next, and nothing in it could tell one face from another.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Grey = NDArray[np.uint8]
Box = NDArray[np.float64]  # x0, y0, x1, y1 in frame pixels

_GRID = 3  # points per side of the grid inside a box
_INSET = 0.15  # of the box's size: points stay off its edges, where the background shows
_STEPS = np.linspace(_INSET, 1.0 - _INSET, _GRID)  # where the grid's points lie across a box
# Pixels around each point that the flow matches. 9x9 follows faces as 11x11 did (the same
# face-frames protected on the shared and the dusk group clips, in memory at 15 and 30 frames/s)
# for 17-22 % less of a frame's tracking time (docs/measurements.md, "Keeping up").
_WINDOW = (9, 9)
_LEVELS = 3
_CRITERIA: Any = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)
_HALF_FROM = 24.0  # px: boxes whose smaller side is at least this are followed at half size
_FB_LIMIT = 1.5  # px: the most a point may miss its start, tracked forward and back
_MIN_POINTS = 4  # of the 9: fewer agreeing points and the box is not followed
_SCALE = (0.8, 1.25)  # the most a face can grow or shrink from one frame to the next
# The pairs of grid points whose distances give the change of scale.
_PAIRS = np.triu_indices(_GRID * _GRID, 1)
_SHIFT_SCALE = 8  # the picture's own motion is measured on copies this many times smaller
_SHIFT_RESPONSE = 0.1  # phase correlation's peak under this: no clear motion of the whole


def follow(before: Grey, after: Grey, box: Box, reach: float) -> Box | None:
    """`box` (on `before`) moved onto `after`, or None when the flow cannot say where it went.
    `reach`: how far (px) it may have moved; the crop looked at is the box grown by that."""
    return follow_all(before, after, [box], [reach])[0]


def follow_all(
    before: Grey,
    after: Grey,
    boxes: Sequence[Box],
    reaches: Sequence[float],
    guess: NDArray[np.float64] | None = None,
) -> list[Box | None]:
    """Each of `boxes` (on `before`) moved onto `after`, or None where the flow cannot say
    (`follow`). All of them in one tracking call, on one crop that holds every box grown by its
    reach (and by the picture's own motion): a frame's faces cost about what one does. The
    points start where the picture as a whole moved (`guess`, or measured: `shift`): a worn
    camera's pan and bob move every face alike, often further than a small, dim face's flow
    could find alone."""
    out: list[Box | None] = [None] * len(boxes)
    if not boxes:
        return out
    height, width = before.shape[:2]
    xyxy = np.array([[float(v) for v in box] for box in boxes], dtype=np.float64).reshape(-1, 4)
    guess = shift(before, after) if guess is None else guess
    far = np.asarray(reaches, dtype=np.float64) + float(np.abs(guess).max())
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    lo = np.maximum(0, np.floor(xyxy[:, :2] - far[:, None])).astype(int)
    hi = np.minimum([width, height], np.ceil(xyxy[:, 2:] + far[:, None])).astype(int)
    usable = (w >= 4) & (h >= 4) & ((hi - lo) >= 16).all(axis=1)
    # Boxes large enough to keep their detail at half size are followed there: a quarter of the
    # pixels to build the flow's image pyramids from. The small ones at full size.
    large = np.minimum(w, h) >= _HALF_FROM
    parts = []
    for group, f in ((usable & large, 0.5), (usable & ~large, 1.0)):
        idx = np.flatnonzero(group)
        if idx.size:
            tracked = _follow_group(before, after, lo[idx], hi[idx], xyxy[idx], f, guess)
            parts.append((idx, *tracked))
    if not parts:
        return out
    # Each box's points are moved in its own crop's pixels: the groups' motions, one median.
    idx, p, q, good = (np.concatenate(column) for column in zip(*parts, strict=True))
    moved, ok = _moved(xyxy[idx], p, q, good), good.sum(axis=1) >= _MIN_POINTS
    for k, i in enumerate(idx):
        if ok[k]:
            out[int(i)] = moved[k]
    return out


def _follow_group(
    before: Grey,
    after: Grey,
    lo: NDArray[np.int_],
    hi: NDArray[np.int_],
    box: NDArray[np.float64],
    f: float,
    guess: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Boxes tracked in one call on the crop that holds them all, at scale `f` (1 or 0.5):
    each box's grid of points there and on `after` (in the crop's pixels), and which of them
    held forward and back."""
    ox0, oy0 = lo.min(axis=0)
    ox1, oy1 = hi.max(axis=0)
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    # A grid of points inside each box, kept off its edges (the background shows there).
    xs = box[:, 0, None] + _STEPS[None, :] * w[:, None]
    ys = box[:, 1, None] + _STEPS[None, :] * h[:, None]
    grid = np.stack(np.broadcast_arrays(xs[:, None, :], ys[:, :, None]), axis=-1)
    start = ((grid.reshape(-1, 2) - [ox0, oy0]) * f).astype(np.float32).reshape(-1, 1, 2)
    a: NDArray[Any] = np.ascontiguousarray(before[oy0:oy1, ox0:ox1])
    b: NDArray[Any] = np.ascontiguousarray(after[oy0:oy1, ox0:ox1])
    levels = _LEVELS
    if f < 1.0:
        a, b, levels = cv2.pyrDown(a), cv2.pyrDown(b), _LEVELS - 1
    moved_by = (guess * f).astype(np.float32)
    ahead, ok_ahead, _ = cv2.calcOpticalFlowPyrLK(
        a,
        b,
        start,
        start + moved_by,
        winSize=_WINDOW,
        maxLevel=levels,
        criteria=_CRITERIA,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
    )
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(
        b,
        a,
        ahead,
        ahead - moved_by,
        winSize=_WINDOW,
        maxLevel=levels,
        criteria=_CRITERIA,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
    )
    n = _GRID * _GRID
    p = start.reshape(-1, n, 2).astype(np.float64) / f
    q = ahead.reshape(-1, n, 2).astype(np.float64) / f
    miss = np.linalg.norm(back.reshape(-1, n, 2).astype(np.float64) / f - p, axis=2)
    good = (ok_ahead.reshape(-1, n) == 1) & (ok_back.reshape(-1, n) == 1) & (miss <= _FB_LIMIT)
    return p, q, good


def _moved(
    box: NDArray[np.float64], p: NDArray[np.float64], q: NDArray[np.float64], good: NDArray[Any]
) -> NDArray[np.float64]:
    """Each box moved by the median motion of its good points `p` -> `q`, and scaled by the
    median change of the distances between them (1 where too few are apart)."""
    nan = np.float64(np.nan)
    n = len(box)
    with np.errstate(all="ignore"):
        i, j = _PAIRS
        before_d = np.linalg.norm(p[:, i] - p[:, j], axis=2)
        after_d = np.linalg.norm(q[:, i] - q[:, j], axis=2)
        pair = good[:, i] & good[:, j] & (before_d > 1.0)
        # One sort for every median: the x motions, the y motions and the distance ratios of
        # each box, as rows padded with NaN to the pairs' width.
        rows = np.full((3 * n, pair.shape[1]), nan)
        motion = np.where(good[..., None], q - p, nan)
        rows[:n, : good.shape[1]] = motion[..., 0]
        rows[n : 2 * n, : good.shape[1]] = motion[..., 1]
        rows[2 * n :] = np.where(pair, after_d / before_d, nan)
        medians = _median(rows)
    shift = np.stack([medians[:n], medians[n : 2 * n]], axis=1)
    scale = np.clip(np.nan_to_num(medians[2 * n :], nan=1.0), *_SCALE)
    centre = (box[:, :2] + box[:, 2:]) / 2 + np.nan_to_num(shift)
    half = (box[:, 2:] - box[:, :2]) * scale[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def _median(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The median of each row, NaNs left out (NaN for a row of none); numpy's nanmedian does
    the same a row at a time, many times slower on a frame's small rows."""
    ordered = np.sort(values, axis=1)  # NaNs sort last
    count = (~np.isnan(values)).sum(axis=1)
    lo = np.clip((count - 1) // 2, 0, None)[:, None]
    hi = np.clip(count // 2, 0, None)[:, None]
    middle = (np.take_along_axis(ordered, lo, 1) + np.take_along_axis(ordered, hi, 1)) / 2
    return np.where(count > 0, middle[:, 0], np.nan)


def shift(before: Grey, after: Grey) -> NDArray[np.float64]:
    """How far (dx, dy, px) the picture as a whole moved from `before` to `after`: phase
    correlation of copies `_SHIFT_SCALE` times smaller; (0, 0) when it has no clear answer (a
    cut, a flat picture, a scene of many motions)."""
    return shift_between(motion_copy(before), motion_copy(after), before.shape)


def motion_copy(grey: Grey) -> NDArray[np.float32]:
    """The small copy of a picture that `shift_between` compares (a run makes it once a frame
    and compares it with the next frame's)."""
    height, width = grey.shape[:2]
    size = (max(16, width // _SHIFT_SCALE), max(16, height // _SHIFT_SCALE))
    return np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), dtype=np.float32)


def shift_between(
    before: NDArray[np.float32], after: NDArray[np.float32], shape: tuple[int, ...]
) -> NDArray[np.float64]:
    """`shift` from two `motion_copy`s of pictures of `shape` (height, width)."""
    height, width = shape[:2]
    size = (after.shape[1], after.shape[0])
    (dx, dy), response = cv2.phaseCorrelate(before, after, _hann(size))
    if response < _SHIFT_RESPONSE:
        return np.zeros(2)
    return np.array([dx * width / size[0], dy * height / size[1]], dtype=np.float64)


@lru_cache(maxsize=4)
def _hann(size: tuple[int, int]) -> NDArray[np.float32]:
    return np.asarray(cv2.createHanningWindow(size, cv2.CV_32F), np.float32)


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
