"""BlazeFace (MediaPipe's face detector) on LiteRT: a small SSD with fixed anchors.

The model sees a square input (128 px short range, 192 px full range); a region of the frame is
scaled to fit it, keeping its aspect ratio, and the rest is padded. Each anchor yields a score
logit and a box: centre offset and size in input pixels. The file Veil loads has only those four
box channels (`blazeface-boxes` removes the keypoint channels at fetch).

Faces under about 10 input pixels are mostly missed: a 1280x720 frame squeezed into 192 px
loses most faces under about 65 px. So besides the whole frame, `tiles` adds a grid of square
overlapping tiles `tiles` columns wide, each scaled to the input on its own; their boxes are
mapped back to the frame and merged with the whole frame's.

Frames are independent (tracking across frames is the tracker's job). Nothing but boxes and
scores leaves this module.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.detect.base import inference_threads
from edge.detect.detections import Detections
from edge.detect.exposure import LowLight
from edge.detect.nms import nms
from edge.detect.tiles import tile_grid
from edge.errors import ModelError
from edge.frames import Pixels
from edge.models import verified_model_bytes

_MISSING = (
    "BlazeFace needs ai-edge-litert, a dependency of Veil: pip install 'ai-edge-litert>=2.3,<3'"
)
Range = Literal["short", "full"]
Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels

# Per input side: (cells per side, anchors per cell) of each head, in the model's output order.
_HEADS = {128: ((16, 2), (8, 6)), 192: ((48, 1),)}
# Measured on the faces of ../shared/eval/dev found at IoU > 0.3: annotated boxes are 1.16x (median;
# 1.27x at p75) as tall as BlazeFace's and their centre lies 0.03-0.08 box heights higher.
_TALLER = 1.3
_RAISE = 0.05


class BlazeFace:
    name = "blazeface"

    def __init__(
        self,
        *,
        model: Range = "full",
        threshold: float = 0.3,
        nms_iou: float = 0.4,
        tiles: int = 0,
        tile_overlap: float = 0.25,
        threads: int = 0,
        low_light: LowLight | None = None,
        video: bool = False,
    ) -> None:
        """`video`: frames of one stream, which alternate dark inputs (`edge.detect.exposure`)
        frame by frame; otherwise unrelated still images."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if tiles < 0:
            raise ValueError(f"tiles must be 0 or more, got {tiles}")
        if not 0.0 < tile_overlap < 1.0:
            raise ValueError(f"tile_overlap must be in (0, 1), got {tile_overlap}")
        self.model = model
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.tiles = tiles
        self.tile_overlap = tile_overlap
        self.low_light = low_light or LowLight()
        self.video = video
        self._frames = 0
        self._run = _Runner(verified_model_bytes(f"blazeface-{model}"), threads)
        self.input_side = self._run.side

    def regions(self, height: int, width: int) -> list[Region]:
        """The whole frame, then `tiles` columns of square tiles (as many rows as the height
        needs) whose neighbours share `tile_overlap` of their side."""
        whole = (0, 0, width, height)
        if self.tiles == 0:
            return [whole]
        side = math.ceil(width / (self.tiles - (self.tiles - 1) * self.tile_overlap))
        overlap = math.floor(side * self.tile_overlap)  # so the grid is `tiles` columns wide
        grid = tile_grid(height, width, side, overlap) if side > overlap else []
        return [whole] + [r for r in grid if r != whole]

    def detect(self, image: Pixels) -> Detections:
        height, width = image.shape[:2]
        cycle = self._frames if self.video else None
        self._frames += 1
        found = [self._region(image, region, cycle) for region in self.regions(height, width)]
        merged = Detections.concat(found)
        merged.clip(height, width)
        return nms(merged, self.nms_iou)

    def _region(self, image: Pixels, region: Region, cycle: int | None) -> Detections:
        """Detections in one region, in frame pixels; `cycle` as for `LowLight.inputs`."""
        x0, y0, x1, y1 = region
        crop = image[y0:y1, x0:x1]
        side = self.input_side
        scale = side / max(x1 - x0, y1 - y0)
        w, h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        parts = []
        resized = cv2.resize(crop, (w, h), interpolation=interpolation)
        for seen in self.low_light.inputs(resized, cycle):
            small = cv2.cvtColor(seen, cv2.COLOR_BGR2RGB)
            tensor = np.zeros((1, side, side, 3), np.float32)  # padding: mid-grey after scaling
            tensor[0, :h, :w] = small.astype(np.float32) * (1.0 / 127.5) - 1.0
            boxes, logits = self._run(tensor)
            parts.append(decode(boxes, logits, self._run.anchors, self.threshold))
        found = parts[0] if len(parts) == 1 else Detections.concat(parts)
        xyxy = found.xyxy / np.float32(scale) + np.array([x0, y0, x0, y0], np.float32)
        return Detections(xyxy.astype(np.float32, copy=False), found.scores)


def anchors(side: int) -> NDArray[np.float32]:
    """Anchor centres (N, 2) in input pixels, in the model's output order: head by head, row by
    row, each cell's anchors one after another."""
    try:
        heads = _HEADS[side]
    except KeyError:
        raise ModelError(f"no BlazeFace anchor layout for a {side} px input") from None
    centres = []
    for cells, per_cell in heads:
        stride = side / cells
        ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32)
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1) * stride + stride / 2
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(
    boxes: NDArray[np.float32],
    logits: NDArray[np.float32],
    centres: NDArray[np.float32],
    threshold: float,
) -> Detections:
    """Raw boxes (N, 4: dx, dy, w, h) and logits (N,) to boxes in input pixels."""
    # Compare in logit space, so the sigmoid is only taken of kept scores (no overflow).
    keep = np.nonzero(logits >= math.log(threshold / (1.0 - threshold)))[0]
    if keep.size == 0:
        return Detections.empty()
    scores = 1.0 / (1.0 + np.exp(-logits[keep]))
    centre = centres[keep] + boxes[keep, :2]
    half = boxes[keep, 2:4] / 2
    # BlazeFace's boxes are square; annotated faces are taller and reach higher. The grown box
    # still contains the predicted one, so masks only get larger.
    centre[:, 1] -= _RAISE * boxes[keep, 3]
    half[:, 1] *= _TALLER
    xyxy = np.concatenate([centre - half, centre + half], axis=1)
    return Detections(xyxy.astype(np.float32), scores.astype(np.float32))


class _Runner:
    """One LiteRT interpreter for a `blazeface-boxes` model, loaded from verified bytes."""

    def __init__(self, model: bytes, threads: int) -> None:
        interpreter = _interpreter(model, threads)
        (inp,) = interpreter.get_input_details()
        outputs = {d["name"]: d for d in interpreter.get_output_details()}
        shape = tuple(int(d) for d in inp["shape"])
        if sorted(outputs) != ["boxes", "logits"] or len(shape) != 4 or shape[1] != shape[2]:
            raise ModelError("the BlazeFace file does not have the prepared inputs and outputs")
        self.side = shape[1]
        self.anchors = anchors(self.side)
        count = int(outputs["boxes"]["shape"][1])
        if count != len(self.anchors) or int(outputs["boxes"]["shape"][2]) != 4:
            raise ModelError(f"BlazeFace gives {count} boxes for {len(self.anchors)} anchors")
        self._interpreter = interpreter
        self._input = inp["index"]
        self._boxes = outputs["boxes"]["index"]
        self._logits = outputs["logits"]["index"]

    def __call__(
        self, tensor: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        boxes = self._interpreter.get_tensor(self._boxes)[0]
        logits = self._interpreter.get_tensor(self._logits)[0, :, 0]
        return boxes, logits


def _interpreter(model: bytes, threads: int) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ModelError(_MISSING) from None
    try:
        interpreter = Interpreter(model_content=model, num_threads=inference_threads(threads))
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"LiteRT cannot load BlazeFace: {exc}") from None
    return interpreter
