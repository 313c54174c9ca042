"""A dim body-camera clip of labelled faces, for measuring the live loop by group.

The faces of a groups set (one labelled face per photo, `groups/dev/README.md`) are laid out in a
long scene, two rows deep, each photo shrunk so that its face is 13-30 px: bystanders as a body
camera sees them. A 1280x720 view walks along the scene the way a worn camera moves: a steady
pan, a walking bob, hand jitter and a slow breathing zoom. Every frame is then made dim and soft
as dusk is in `veil eval --conditions low_light+blur` (the same curve, blur and noise, the noise
seeded per frame). Each face's box on each frame is exact (the view is an affine map of the
scene), and each face keeps its photo's labels, so a recording can be scored per group.

Nothing is inferred about anyone: the labels are the set's own. The clip is written with
FFmpeg's x264 at the quality of a good camera stream (CRF 24, which smooths some of the
noise, as a camera's encoder does), with `annotations.json` in the `faceblur-eval/1` format plus
`subjects` (a face's labels by id) and each frame's `subject` list, parallel to its faces.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge.evaluate.evalset import ImageItem
from edge.evaluate.size_sweep import Rendered, apply_condition, background
from edge.frames import Pixels

VIEW = (1280, 720)  # width, height
FPS = 30
SIZES = (13.0, 30.0)  # px: the faces' shorter side in the scene, before the zoom
ZOOM = 0.08  # the breathing zoom's depth: the view is 1 +- this of the scene's scale
_ROWS = (0.32, 0.68)  # where the two rows of faces stand, as shares of the view's height
_SPACING = 150.0  # scene px between the faces of one row
_LEAD = 700.0  # scene px of empty scene before the first face and after the last
CONDITION = "low_light+blur"


@dataclass(frozen=True)
class Placed:
    """One face in the scene: its id, labels and box (x, y, w, h) in scene pixels."""

    subject: str
    labels: dict[str, Any]
    box: tuple[float, float, float, float]


def _share(key: str) -> float:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def build_scene(
    root: Path, items: Sequence[ImageItem], read: Callable[[Path], Pixels]
) -> tuple[Pixels, list[Placed]]:
    """The long scene with every labelled face of `items` pasted into it, and where each is."""
    labelled = [item for item in items if item.labels is not None and item.faces]
    per_row = math.ceil(len(labelled) / len(_ROWS))
    width = int(2 * _LEAD + per_row * _SPACING)
    height = VIEW[1]
    tile = background(VIEW[0], VIEW[1])
    scene = np.ascontiguousarray(np.tile(tile, (1, math.ceil(width / VIEW[0]), 1))[:, :width])
    placed: list[Placed] = []
    for n, item in enumerate(labelled):
        row, column = n % len(_ROWS), n // len(_ROWS)
        size = SIZES[0] + (SIZES[1] - SIZES[0]) * _share(item.file)
        x, y, w, h = item.faces[0]
        scale = size / min(w, h)
        image = read(root / item.file)
        small = np.asarray(
            cv2.resize(
                image,
                (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                interpolation=cv2.INTER_AREA,
            ),
            dtype=np.uint8,
        )
        # The face's centre on its row, nudged a little so that the rows are not a grid.
        cx = _LEAD + (column + 0.5 + 0.3 * (_share(item.file + "x") - 0.5)) * _SPACING
        cy = height * (_ROWS[row] + 0.06 * (_share(item.file + "y") - 0.5))
        ox = round(cx - (x + w / 2) * scale)
        oy = round(cy - (y + h / 2) * scale)
        _paste(scene, small, ox, oy)
        box = (ox + x * scale, oy + y * scale, w * scale, h * scale)
        placed.append(Placed(f"s{n:04d}", dict(item.labels or {}), box))
    return scene, placed


def _paste(scene: Pixels, image: Pixels, ox: int, oy: int) -> None:
    h, w = image.shape[:2]
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(scene.shape[1], ox + w), min(scene.shape[0], oy + h)
    if x1 > x0 and y1 > y0:
        scene[y0:y1, x0:x1] = image[y0 - oy : y1 - oy, x0 - ox : x1 - ox]


def view_at(t: float, scene_width: int, seconds: float) -> np.ndarray:
    """The 2x3 affine map from scene to view pixels at time `t` (s): a pan from the scene's
    start to its end over `seconds`, a walking bob, jitter and a slow zoom about the centre."""
    travel = scene_width - VIEW[0]
    x = travel * t / seconds
    bob = 9.0 * math.sin(2 * math.pi * 1.9 * t) + 2.5 * math.sin(2 * math.pi * 7.3 * t + 1.0)
    sway = 3.0 * math.sin(2 * math.pi * 0.95 * t) + 1.5 * math.sin(2 * math.pi * 5.1 * t)
    zoom = 1.0 + ZOOM * math.sin(2 * math.pi * t / 11.0)
    cx, cy = VIEW[0] / 2, VIEW[1] / 2
    # view = zoom * (scene - (x + cx + sway, cy + bob)) + (cx, cy)
    return np.array(
        [[zoom, 0.0, cx - zoom * (x + cx + sway)], [0.0, zoom, cy - zoom * (cy + bob)]],
        dtype=np.float64,
    )


def _mapped(matrix: np.ndarray, box: tuple[float, float, float, float]) -> list[float]:
    x, y, w, h = box
    zoom = matrix[0, 0]
    return [
        round(zoom * x + matrix[0, 2], 2),
        round(zoom * y + matrix[1, 2], 2),
        round(zoom * w, 2),
        round(zoom * h, 2),
    ]


def write_group_clip(
    root: Path,
    items: Sequence[ImageItem],
    out: Path,
    read: Callable[[Path], Pixels],
    *,
    seconds: float = 60.0,
) -> dict[str, Any]:
    """Write `out/videos/groups_dusk.mp4` and `out/annotations.json`; returns the annotations.
    A face counts on a frame when its whole box is in view; one cut by the frame's edge is in
    the frame's `ignore`."""
    scene, placed = build_scene(root, items, read)
    name = "videos/groups_dusk.mp4"
    (out / "videos").mkdir(parents=True, exist_ok=True)
    frames: list[dict[str, Any]] = []
    count = round(seconds * FPS)
    with av.open(str(out / name), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = VIEW[0], VIEW[1], "yuv420p"
        stream.options = {"crf": "24", "preset": "veryfast", "bf": "0"}
        for index in range(count):
            matrix = view_at(index / FPS, scene.shape[1], seconds)
            seen = np.asarray(cv2.warpAffine(scene, matrix, VIEW, flags=cv2.INTER_LINEAR), np.uint8)
            dusk = apply_condition(Rendered(seen, (0, 0, 0, 0)), CONDITION, key=f"frame{index}")
            faces, subjects, ignore = [], [], []
            for face in placed:
                box = _mapped(matrix, face.box)
                x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
                if x0 >= 0 and y0 >= 0 and x1 <= VIEW[0] and y1 <= VIEW[1]:
                    faces.append(box)
                    subjects.append(face.subject)
                elif x1 > 0 and y1 > 0 and x0 < VIEW[0] and y0 < VIEW[1]:
                    ignore.append(box)  # cut by the frame's edge: neither scored nor counted
            frames.append({"index": index, "faces": faces, "ignore": ignore, "subjects": subjects})
            frame = av.VideoFrame.from_ndarray(dusk.pixels, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    annotations = {
        "format": "faceblur-eval/1",
        "set": "groups_dusk (generated from a groups set)",
        "box_format": "[x, y, w, h]",
        "images": [],
        "videos": [
            {
                "file": name,
                "width": VIEW[0],
                "height": VIEW[1],
                "fps": FPS,
                "num_frames": count,
                "source": (
                    f"labelled faces of {root.name} at {SIZES[0]:g}-{SIZES[1]:g} px in a "
                    f"panned scene, {CONDITION}"
                ),
                # The photos may hold unlabelled people behind the labelled face: recall of the
                # labelled faces only, no over-redaction.
                "exhaustive": False,
                "synthetic": True,
                "subjects": {face.subject: face.labels for face in placed},
                "frames": frames,
            }
        ],
    }
    (out / "annotations.json").write_text(json.dumps(annotations), encoding="utf-8")
    return annotations
