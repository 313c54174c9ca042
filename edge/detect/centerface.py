"""CenterFace on onnxruntime: an anchor-free detector that predicts a face-centre heatmap.

The model sees the frame scaled so its longer side is at most `max_side`, padded to multiples of
32. A fine pass can search it again at `fine_scale`, piece by piece: still images in large
overlapping tiles, video frames in a grid of regions (`passes`), which a run spreads over several
frames (`edge.run.schedule`). Each heatmap cell above `threshold` is a face centre; `scale`
gives log box size and `offset` the sub-cell position, both in units of the heatmap's stride
(4 input pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.detect.base import inference_threads
from edge.detect.detections import Detections, clip_xyxy
from edge.detect.exposure import LowLight
from edge.detect.nms import nms
from edge.detect.passes import ALIGN, Pass, Region, aligned, shrunk
from edge.detect.second_look import SecondLook, look_again
from edge.detect.sweep import grid_regions
from edge.detect.tiles import tile_grid
from edge.errors import ModelError
from edge.frames import Pixels
from edge.models import verified_model_bytes
from edge.telemetry import switch_off

CPU = "CPUExecutionProvider"
_STRIDE = 4
# Tiles overlap by this many model-input pixels: more than the largest face the fine pass is for.
_TILE_OVERLAP = 96
# The smallest face, in model-input pixels, the whole-frame pass answers for: below it the fine
# pass's (measured on the shared clips: 97-100 % of faces of 12 model px and more are found).
_WHOLE_SMALLEST = 12.0


class CenterFace:
    name = "centerface"

    def __init__(
        self,
        *,
        threshold: float = 0.1,
        nms_iou: float = 0.4,
        max_side: int = 640,
        max_downscale: float = 2.0,
        fine_scale: float | None = None,
        fine_grid: tuple[int, int] = (1, 4),
        fine_margin: int = 32,
        tile_side: int = 1536,
        still: bool = False,
        threads: int = 0,
        providers: Sequence[str] = (CPU,),
        low_light: LowLight | None = None,
        second_look: SecondLook | None = None,
    ) -> None:
        """Still images (`still`): `fine_scale` with tiles of `tile_side` model pixels. Video
        frames: `fine_scale` in a `fine_grid` (rows, columns) of regions, each reaching
        `fine_margin` px into its neighbours (`passes`).
        `providers`: onnxruntime execution providers, best first; after construction
        `provider` is the one that runs and `fallback` those asked for that do not.
        `low_light`: how dark pass inputs are brightened (`edge.detect.exposure`).
        `second_look`: still images' faint candidates searched again (`edge.detect.second_look`)."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if max_side < ALIGN:
            raise ValueError(f"max_side must be at least {ALIGN}, got {max_side}")
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.max_side = max_side
        self.max_downscale = max_downscale
        self.fine_scale = fine_scale
        self.tile_side = tile_side
        self.fine_grid = fine_grid
        self.fine_margin = fine_margin
        self.still = still
        self.low_light = low_light or LowLight()
        self.second_look = second_look if still else None
        self.second_passes = 0  # model passes the second looks took, for measurement
        self.threads = inference_threads(threads)
        self._model = verified_model_bytes("centerface")
        self.providers = tuple(providers) if providers else (CPU,)
        self._session = _session(self._model, self.threads, self.providers)
        running = tuple(self._session.get_providers())
        self.provider: str = running[0] if running else CPU
        # Asked for, but not what runs: unavailable in this onnxruntime, or dropped by it (a
        # CUDA provider without its libraries). Never silent: see `edge.detect.fallback_warning`.
        self.fallback = tuple(name for name in self.providers if name not in running)
        # A frame with several passes runs them side by side, one thread each: on 2 cores that
        # is 1.9x the throughput, where one pass on 2 intra-op threads is 1.2-1.5x
        # (docs/measurements.md).
        self._single: Any = None
        self._pool: ThreadPoolExecutor | None = None

    def scale(self, height: int, width: int) -> float:
        """The whole-frame scale: fit `max_side`, but never shrink more than `max_downscale`."""
        return min(1.0, max(self.max_side / max(height, width), 1.0 / self.max_downscale))

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) the model sees for the whole frame, each side rounded to the nearest
        multiple of 32. The aspect ratio shifts by a few percent at most, which the detector
        tolerates, and no compute is spent on padding."""
        scale = self.scale(height, width)
        return aligned(height * scale), aligned(width * scale)

    def passes(self, height: int, width: int) -> list[Pass]:
        """The whole frame, then (where `fine_scale` is above the whole pass's scale) the fine
        regions, row by row: together they cover a video frame once."""
        whole_scale = self.scale(height, width)
        out = [
            Pass(
                "whole",
                (0, 0, width, height),
                self.input_size(height, width),
                (_WHOLE_SMALLEST / whole_scale, float("inf")),
                (0, 0, width, height),
            )
        ]
        fine = self.fine_scale
        if fine is None or fine <= whole_scale:
            return out
        rows, cols = self.fine_grid
        margin = self.fine_margin
        for x0, y0, x1, y1 in grid_regions(height, width, rows, cols, margin):
            # A face up to twice the margin lies whole inside the region that holds its centre's
            # cell; the inner area is the region less the margin wherever it meets a neighbour.
            inner = (
                x0 + margin if x0 > 0 else 0,
                y0 + margin if y0 > 0 else 0,
                x1 - margin if x1 < width else width,
                y1 - margin if y1 < height else height,
            )
            size = aligned((y1 - y0) * fine), aligned((x1 - x0) * fine)
            out.append(Pass("fine", (x0, y0, x1, y1), size, (0.0, 2.0 * margin), inner))
        return out

    def search(self, image: Pixels, passes: Sequence[Pass], cycle: int | None) -> Detections:
        """The detections of `passes` on `image` (`edge.detect.passes`)."""
        jobs = [(_crop(image, p.region), *p.size, p.region[0], p.region[1]) for p in passes]
        return nms(Detections.concat(self._run(jobs, cycle)), self.nms_iou)

    def detect(self, image: Pixels) -> Detections:
        """Every pass at once: a still image (the whole image, then tiles at `fine_scale`), or a
        video frame searched whole (its `passes`)."""
        height, width = image.shape[:2]
        if not self.still:
            return self.search(image, self.passes(height, width), None)
        fine = self.fine_scale
        jobs: list[tuple[Pixels, int, int, int, int]] = [
            (image, *self.input_size(height, width), 0, 0)
        ]
        if fine is not None and fine > self.scale(height, width):
            for x0, y0, x1, y1 in self._tiles(height, width, fine):
                size = aligned((y1 - y0) * fine), aligned((x1 - x0) * fine)
                jobs.append((image[y0:y1, x0:x1], *size, x0, y0))
        found = nms(Detections.concat(self._run(jobs, None)), self.nms_iou)
        sure = found.scores >= self.threshold
        if self.second_look is None:
            return found[sure]
        extra, passes = look_again(
            image, found[~sure], self._search_whole, self.low_light, self.second_look
        )
        self.second_passes += passes
        extra.clip(height, width)
        return nms(Detections.concat([found[sure], extra]), self.nms_iou)

    def _floor(self) -> float:
        """The lowest score a pass keeps: under `threshold`, candidates for a second look."""
        return self.threshold if self.second_look is None else self.second_look.faint_from

    def _search_whole(self, pixels: Pixels) -> Detections:
        """One model pass on `pixels` at their size (multiples of 32), at the threshold."""
        return _infer(self._session, pixels, self.threshold)

    def _run(
        self, jobs: list[tuple[Pixels, int, int, int, int]], cycle: int | None
    ) -> list[Detections]:
        if len(jobs) < 2 or self.threads < 2:
            parts = [self._pass(self._session, *job[:3], cycle) for job in jobs]
        else:
            if self._pool is None:
                self._single = _session(self._model, 1, self.providers)
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="centerface")
            session = self._single
            parts = list(
                self._pool.map(lambda job: self._pass(session, job[0], job[1], job[2], cycle), jobs)
            )
        return [part.shifted(x0, y0) for part, (*_, x0, y0) in zip(parts, jobs, strict=True)]

    def _tiles(self, height: int, width: int, fine: float) -> list[Region]:
        """A still image's fine pass: large square tiles."""
        overlap = _TILE_OVERLAP / fine  # in image pixels
        side = max(round(self.tile_side / fine), round(2 * overlap) + 1)
        return tile_grid(height, width, side, round(overlap))

    def _pass(
        self, session: Any, image: Pixels, in_h: int, in_w: int, cycle: int | None
    ) -> Detections:
        """Detections in `image` pixels with the model run at (in_h, in_w); `cycle`: a video
        frame's sweep cycle, None for a still (`edge.detect.exposure`)."""
        height, width = image.shape[:2]
        small = shrunk(image, in_w, in_h, exact=cycle is None)
        parts = []
        for look in self.low_light.looks(small, cycle):
            parts.append(_infer(session, look.pixels, self._floor()).shifted(look.x0, look.y0))
        found = parts[0] if len(parts) == 1 else Detections.concat(parts)
        if len(found) == 0:
            return found
        boxes = found.xyxy * np.array([width / in_w, height / in_h] * 2, dtype=np.float32)
        clip_xyxy(boxes, height, width)
        return Detections(boxes, found.scores)


def _crop(image: Pixels, region: Region) -> Pixels:
    x0, y0, x1, y1 = region
    return image[y0:y1, x0:x1]


def _infer(session: Any, pixels: Pixels, threshold: float) -> Detections:
    """One model pass on `pixels` at their size: boxes scoring above `threshold`, in its pixels."""
    # blobFromImage swaps BGR to RGB and lays out NCHW float32 in one pass.
    blob = cv2.dnn.blobFromImage(pixels, 1.0, swapRB=True)
    heat, log_size, offset = session.run(["heatmap", "scale", "offset"], {"image": blob})
    return decode(heat[0, 0], log_size[0], offset[0], threshold)


def _session(model: bytes, threads: int, providers: Sequence[str]) -> Any:
    # Done on importing edge already; again here in case something imported onnxruntime first.
    switch_off()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = inference_threads(threads)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle worker threads would spin and take the cores that decoding and encoding need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    available = set(ort.get_available_providers())
    asked = [name for name in providers if name in available] or [CPU]
    try:
        return ort.InferenceSession(model, opts, providers=asked)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime cannot load CenterFace: {exc}") from None


def decode(
    heat: NDArray[np.float32],
    log_size: NDArray[np.float32],
    offset: NDArray[np.float32],
    threshold: float,
) -> Detections:
    """Heatmap (H, W), log sizes (2, H, W) and offsets (2, H, W) to boxes in model-input pixels."""
    ys, xs = np.nonzero(heat > threshold)
    if ys.size == 0:
        return Detections.empty()
    box_h = np.exp(log_size[0, ys, xs]) * _STRIDE
    box_w = np.exp(log_size[1, ys, xs]) * _STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * _STRIDE
    xyxy = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
    return Detections(xyxy.astype(np.float32), heat[ys, xs].astype(np.float32))
