"""A generated sample clip of real, moving faces, with the true face boxes of every frame.

The faces are the public-domain NASA portrait that scikit-image ships (`skimage.data.astronaut`),
cut out head-and-shoulders, scaled to several sizes and moved across a textured scene. It is how the
README's first command shows Veil at work on a fresh machine, and what the end-to-end tests check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from edge.errors import OutputError, UsageError

# Head-and-shoulders cut of astronaut(): rows 0..330, columns 100..360; the face box inside it
# (brow to chin, ear to ear), drawn by hand.
_CUT = (100, 0, 360, 330)
_FACE_IN_CUT = (78.0, 60.0, 94.0, 122.0)

Box = tuple[float, float, float, float]


def _skimage_data() -> Any:
    try:
        import skimage.data
    except ImportError:
        raise UsageError(
            "the sample clip uses scikit-image's public-domain photos: "
            "pip install 'veil-edge[sample]'"
        ) from None
    return skimage.data


@dataclass(frozen=True)
class Actor:
    scale: float  # sprite size relative to the cut, for a 720-line frame
    cell: tuple[float, float, float, float]  # x0, y0, x1, y1 share of the frame it moves in
    velocity: tuple[float, float]  # px per frame at 720 lines
    flip: bool


# Each actor keeps to its own cell, so no face is ever hidden behind another sprite and the true
# boxes stay exact. Face heights at 720 lines: about 159, 85, 49 and 30 px.
_ACTORS = (
    Actor(1.30, (0.00, 0.00, 0.50, 1.00), (3.0, 1.5), False),
    Actor(0.70, (0.50, 0.00, 1.00, 0.50), (-4.0, 1.2), True),
    Actor(0.40, (0.50, 0.50, 0.75, 1.00), (2.0, -2.5), False),
    Actor(0.25, (0.75, 0.50, 1.00, 1.00), (-2.5, 1.5), True),
)


def _sprite(scale: float, flip: bool) -> tuple[NDArray[np.uint8], Box]:
    photo = cv2.cvtColor(_skimage_data().astronaut(), cv2.COLOR_RGB2BGR)
    x0, y0, x1, y1 = _CUT
    cut = photo[y0:y1, x0:x1]
    size = (max(8, round(cut.shape[1] * scale)), max(8, round(cut.shape[0] * scale)))
    sprite = cv2.resize(cut, size, interpolation=cv2.INTER_AREA)
    fx, fy, fw, fh = (v * sprite.shape[1] / cut.shape[1] for v in _FACE_IN_CUT)
    if flip:
        sprite = sprite[:, ::-1].copy()
        fx = sprite.shape[1] - fx - fw
    return sprite, (fx, fy, fw, fh)


def _background(width: int, height: int) -> NDArray[np.uint8]:
    scene = cv2.cvtColor(_skimage_data().coffee(), cv2.COLOR_RGB2BGR)
    bricks = cv2.cvtColor(_skimage_data().brick(), cv2.COLOR_GRAY2BGR)
    left = cv2.resize(scene, (width // 2, height), interpolation=cv2.INTER_AREA)
    right = cv2.resize(bricks, (width - width // 2, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.concatenate([left, right], axis=1))


def _bounce(pos: float, lo: float, hi: float) -> float:
    span = hi - lo
    if span <= 0:
        return lo
    phase = (pos - lo) % (2 * span)
    return lo + (phase if phase <= span else 2 * span - phase)


def sample_frames(
    width: int = 1280, height: int = 720, frames: int = 90
) -> Iterator[tuple[NDArray[np.uint8], list[Box]]]:
    """Yield (frame, face boxes) for each frame of the sample clip."""
    background = _background(width, height)
    unit = height / 720
    sprites = [(a, *_sprite(a.scale * unit, a.flip)) for a in _ACTORS]
    for k in range(frames):
        frame = background.copy()
        boxes: list[Box] = []
        for actor, sprite, (fx, fy, fw, fh) in sprites:
            sh, sw = sprite.shape[:2]
            cx0, cy0 = actor.cell[0] * width, actor.cell[1] * height
            cx1, cy1 = actor.cell[2] * width - sw, actor.cell[3] * height - sh
            mid_x, mid_y = (cx0 + cx1) / 2, (cy0 + cy1) / 2
            x = round(_bounce(mid_x + actor.velocity[0] * unit * k, cx0, cx1))
            y = round(_bounce(mid_y + actor.velocity[1] * unit * k, cy0, cy1))
            frame[y : y + sh, x : x + sw] = sprite
            boxes.append((x + fx, y + fy, fw, fh))
        yield frame, boxes


def write_sample(
    path: Path, *, width: int = 1280, height: int = 720, fps: int = 30, seconds: float = 3.0
) -> list[list[Box]]:
    """Write the sample clip as H.264 MP4 (its folder made if missing) and return the true face
    boxes of each frame. OutputError when it cannot be written."""
    truth: list[list[Box]] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(path), mode="w", format="mp4")
    except (OSError, av.FFmpegError) as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    with container:
        stream: Any = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame, boxes in sample_frames(width, height, round(fps * seconds)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
            truth.append(boxes)
        container.mux(stream.encode(None))
    return truth
