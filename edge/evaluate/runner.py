"""Runs an evaluation set through Veil's real pipeline, in memory, and scores every frame.

Media are read by the same sources and redacted by the same `redact_stream` loop, detectors and
redactor as `veil redact` uses; only the sink differs: the redacted frame is compared with the
decoded input instead of being encoded. Nothing is written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from edge.capture import ImageFileSource, VideoFileSource
from edge.config import Config
from edge.detect import FaceDetector, build_detector
from edge.errors import MediaError, VeilError
from edge.evaluate.evalset import Box, ImageItem, VideoItem
from edge.evaluate.metrics import ATTRIBUTES, FaceResult, ImageResult, VideoResult
from edge.evaluate.overredaction import CellCount, over_redaction
from edge.evaluate.protection import KEEP_LIMIT, kept_detail
from edge.frames import Pixels, RawFrame, RedactedFrame
from edge.redact import Redactor
from edge.run import RunReport, redact_stream
from edge.run.schedule import Schedule


def score_faces(
    file: str,
    before: Pixels,
    after: Pixels,
    boxes: Sequence[Box],
    attrs: Sequence[Mapping[str, int | str | None]] | None = None,
    frame: int | None = None,
) -> list[FaceResult]:
    results = []
    for i, box in enumerate(boxes):
        kept = kept_detail(before, after, box)
        own = attrs[i] if attrs is not None and i < len(attrs) else {}
        results.append(
            FaceResult(
                file,
                box,
                protected=kept < KEEP_LIMIT,  # is_protected, without measuring twice
                kept=kept,
                frame=frame,
                attrs={k: v for k, v in own.items() if k in ATTRIBUTES},
            )
        )
    return results


class EvalRunner:
    """Holds one detector per media kind, built on first use as `veil redact` does, and counts
    fail-closed frames per kind in `reports`."""

    def __init__(self, root: Path, cfg: Config) -> None:
        self.root = root
        self.cfg = cfg
        self.redactor = Redactor(cfg.redact)
        self.reports = {"images": RunReport(), "videos": RunReport(), "groups": RunReport()}
        self._detectors: dict[bool, FaceDetector] = {}

    def _detector(self, still: bool) -> FaceDetector:
        if still not in self._detectors:
            self._detectors[still] = build_detector(self.cfg.detector, still=still)
        return self._detectors[still]

    def _redact(
        self, frames: Iterable[RawFrame], *, still: bool, report: RunReport
    ) -> Iterator[tuple[RawFrame, RedactedFrame]]:
        """(input, output) pairs. The pipeline gets a copy: the redactor paints in place, and the
        input must stay as decoded to be compared."""
        pending: deque[RawFrame] = deque()

        def feed() -> Iterator[RawFrame]:
            for raw in frames:
                report.frames_in += 1
                pending.append(raw)
                yield RawFrame(raw.pixels.copy(), raw.index, raw.pts, raw.time_base)

        detector = self._detector(still)
        stream = redact_stream(
            feed(),
            detector,
            self.redactor,
            report,
            self.cfg.track,
            schedule=Schedule.of(detector, self.cfg.schedule),
        )
        for out in stream:
            if not pending or pending[0].index != out.index:
                raise VeilError(f"the pipeline returned frame {out.index} out of order")
            report.frames_out += 1
            yield pending.popleft(), out
        if pending:
            raise VeilError(f"the pipeline returned no frame for input frame {pending[0].index}")

    def image(self, item: ImageItem) -> ImageResult:
        path = self.root / item.file
        source = ImageFileSource(path)
        try:
            _check_size(path, source.width, source.height, item.width, item.height)
            ((raw, out),) = self._redact(source.frames(), still=True, report=self.reports["images"])
        finally:
            source.close()
        before, after = raw.pixels, out.pixels
        faces = score_faces(item.file, before, after, item.faces, item.face_attrs)
        cells = (
            over_redaction(before, after, [*item.faces, *item.ignore]) if item.exhaustive else None
        )
        return ImageResult(item.file, faces, cells, out.obscured)

    def video(self, item: VideoItem, on_frame: Callable[[], None] = lambda: None) -> VideoResult:
        path = self.root / item.file
        annotated = {f.index: f for f in item.frames}
        report = RunReport()
        faces: list[FaceResult] = []
        cells = CellCount()
        frames = 0
        source = VideoFileSource(path)
        try:
            _check_size(path, source.width, source.height, item.width, item.height)
            for raw, out in self._redact(source.frames(), still=False, report=report):
                frames += 1
                if (ann := annotated.get(raw.index)) is not None:
                    faces += score_faces(
                        item.file, raw.pixels, out.pixels, ann.faces, frame=raw.index
                    )
                    if item.exhaustive:
                        cells += over_redaction(raw.pixels, out.pixels, [*ann.faces, *ann.ignore])
                on_frame()
        finally:
            source.close()
        beyond = [k for k in annotated if k >= frames]
        if beyond:
            raise MediaError(f"{path}: frame {min(beyond)} is annotated, the video has {frames}")
        total = self.reports["videos"]
        total.frames_in += report.frames_in
        total.frames_out += report.frames_out
        total.faces += report.faces
        total.obscured += report.obscured
        total.failures.update(report.failures)
        scored = cells if item.exhaustive else None
        return VideoResult(item.file, frames, faces, report.obscured, scored)

    def protect(self, image: Pixels) -> Pixels:
        """One still image through the configured pipeline: what a group audit measures."""
        ((_, out),) = self._redact([RawFrame(image, 0)], still=True, report=self.reports["groups"])
        return np.array(out.pixels)


def _check_size(path: Path, width: int, height: int, ann_width: int, ann_height: int) -> None:
    # Boxes are in the annotated pixel grid; a decoded picture of another size (an EXIF rotation,
    # a replaced file) would score the wrong pixels.
    if (width, height) != (ann_width, ann_height):
        raise MediaError(
            f"{path}: decodes to {width}x{height}, the annotation says {ann_width}x{ann_height}"
        )
