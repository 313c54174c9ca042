"""The frame loop: capture → detect → redact → sink, with fail-closed handling.

Decoding and encoding run in their own threads behind small bounded queues, so FFmpeg and
onnxruntime (both release the GIL) overlap while memory stays flat on any length of video.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from edge.capture.base import FrameSource
from edge.capture.video_file import VideoFileSource
from edge.config import TrackConfig, VideoConfig
from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.frames import RawFrame, RedactedFrame
from edge.redact.redactor import Redactor
from edge.sinks.atomic import Seal
from edge.sinks.base import Published, Sink
from edge.sinks.video_file import VideoFileSink
from edge.track import Coverage, Lookahead, Tracker
from edge.track.lookahead import Held

_QUEUE_DEPTH = 4
T = TypeVar("T")


@dataclass
class RunReport:
    frames_in: int = 0
    frames_out: int = 0
    faces: int = 0
    obscured: int = 0  # frames covered whole because detection or redaction failed
    dropped: int = 0  # frames never output (a live source under overload); 0 on recorded media
    failures: Counter[str] = field(default_factory=Counter)
    detect_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    detect_count: int = 0  # every timing ever appended, also those the deque has let go
    seconds: float = 0.0
    output: Published | None = None

    def detect_ms_percentile(self, q: float) -> float:
        return (
            float(np.percentile(np.fromiter(self.detect_ms, float), q)) if self.detect_ms else 0.0
        )

    def recent_detect_ms(self, since_count: int) -> list[float]:
        """The timings appended after the first `since_count` (as many as are still kept)."""
        n = min(self.detect_count - since_count, len(self.detect_ms))
        return list(self.detect_ms)[len(self.detect_ms) - n :] if n > 0 else []


class _Done:
    pass


_DONE = _Done()


class _Stage(Generic[T]):
    """A bounded hand-over between threads that gives up when the run is stopping."""

    def __init__(self, stop: threading.Event) -> None:
        self._q: queue.Queue[T | _Done] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._stop = stop

    def put(self, item: T | _Done) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> T | _Done:
        while True:
            try:
                return self._q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return _DONE


def video_sink_for(
    source: VideoFileSource, path: Path, cfg: VideoConfig, seal: Seal | None = None
) -> VideoFileSink:
    """An MP4 sink matching the source: its upright size, its rate, its timestamps."""
    return VideoFileSink(
        path,
        width=source.width,
        height=source.height,
        rate=source.rate or Fraction(30),
        cfg=cfg,
        time_base=source.time_base,
        seal=seal,
    )


def redact_stream(
    frames: Iterable[RawFrame],
    detector: FaceDetector,
    redactor: Redactor,
    report: RunReport,
    track: TrackConfig | None = None,
    *,
    recorded: bool = True,
) -> Iterator[RedactedFrame]:
    """Detect, track and redact `frames`, yielding one redacted frame per input frame, in order.

    Each frame gets its own detections plus the tracker's held predictions (the union: tracking
    only ever adds masks). On recorded media (`recorded=True`) up to `track.lookahead` frames are
    held back, so a face is also covered on the frames before its first detection and across
    short gaps; a live source passes `recorded=False` and gets only the past and predictions.
    Any failure on a frame obscures that whole frame (fail closed).
    """
    cfg = track or TrackConfig()
    window = cfg.lookahead if recorded else 0
    tracker = Tracker(cfg, backfill=window)
    held: Lookahead[RawFrame] = Lookahead(window)
    for raw in frames:
        start = time.perf_counter()
        failed = None
        try:
            found = detector.detect(raw.pixels)
        except Exception as exc:  # any detector failure: the frame cannot be vouched for
            failed = f"detector: {type(exc).__name__}"
            found = Detections.empty()
        else:
            report.detect_ms.append((time.perf_counter() - start) * 1000.0)
            report.detect_count += 1
        try:
            coverage = tracker.update(found, raw.height, raw.width)
        except Exception as exc:  # boxes the tracker cannot handle (NaN, wrong shape)
            failed = failed or f"tracker: {type(exc).__name__}"
            coverage = Coverage(Detections.empty())
        for ready in held.push(raw, coverage, failed):
            yield _redact(redactor, ready, report)
    for ready in held.flush():
        yield _redact(redactor, ready, report)


def _redact(redactor: Redactor, held: Held[RawFrame], report: RunReport) -> RedactedFrame:
    if held.failed is None:
        try:
            frame = redactor.redact(held.item, held.faces())
        except Exception as exc:  # a half-redacted frame must not survive
            held.failed = f"redactor: {type(exc).__name__}"
        else:
            report.faces += frame.faces
            return frame
    report.failures[held.failed] += 1
    report.obscured += 1
    return redactor.obscure(held.item)


def run(
    source: FrameSource,
    detector: FaceDetector,
    redactor: Redactor,
    sink: Sink,
    track: TrackConfig | None = None,
    *,
    on_frame: Callable[[], None] | None = None,
    observe: Callable[[RunReport], None] | None = None,
    report: RunReport | None = None,
) -> RunReport:
    """Redact every frame of `source` into `sink`. On any error the sink's output is discarded.

    `on_frame` runs on the encode thread after each frame is written (progress); `observe` runs
    on this thread after each frame is redacted (the audit trail's periodic summaries). Pass
    `report` to see the counts of a run that ends in an error.
    """
    report = report if report is not None else RunReport()
    stop = threading.Event()
    decoded: _Stage[RawFrame | BaseException] = _Stage(stop)  # a decode error ends the run
    redacted: _Stage[RedactedFrame] = _Stage(stop)
    errors: list[BaseException] = []
    started = time.perf_counter()

    def read() -> None:
        try:
            for raw in source.frames():
                if not decoded.put(raw):
                    return
            decoded.put(_DONE)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            decoded.put(exc)

    def write() -> None:
        try:
            while not isinstance(item := redacted.get(), _Done):
                sink.write(item)
                report.frames_out += 1
                if on_frame is not None:
                    on_frame()
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    reader = threading.Thread(target=read, name="veil-decode", daemon=True)
    writer = threading.Thread(target=write, name="veil-encode", daemon=True)
    reader.start()
    writer.start()
    try:

        def decoded_frames() -> Iterator[RawFrame]:
            while not isinstance(item := decoded.get(), _Done):
                if isinstance(item, BaseException):
                    raise item
                report.frames_in += 1
                yield item

        for frame in redact_stream(decoded_frames(), detector, redactor, report, track):
            if not redacted.put(frame):
                break
            if observe is not None:
                observe(report)
        redacted.put(_DONE)
        writer.join()
        if errors:
            raise errors[0]
        report.output = sink.close()
    except BaseException:
        stop.set()
        writer.join()
        sink.abort()
        raise
    finally:
        stop.set()
        reader.join()
        source.close()
    report.seconds = time.perf_counter() - started
    return report
