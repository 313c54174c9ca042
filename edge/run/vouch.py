"""The per-frame logic every run shares, recorded or live: detect, track, vouch, redact.

`vouch` turns frames into `Held` frames that the detector has vouched for (searched themselves,
or, where a profile searches every Nth frame, with searched frames on both sides), each with
every box gathered for it; `redact_held` makes the `RedactedFrame`s. `redact_stream` chains the
two for in-memory use (`veil eval`); `edge.run.conveyor` runs them in their own threads. On a
live source each frame has a deadline (`Realtime`): one the detector has not vouched for in time is
dropped or fully obscured, never passed clear, and counted by cause.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import numpy as np

from edge.config import TrackConfig
from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.frames import RawFrame, RedactedFrame
from edge.redact.redactor import Redactor
from edge.run.realtime import Realtime
from edge.run.report import RunReport
from edge.track import Coverage, Lookahead, Tracker
from edge.track.lookahead import Held


def vouch(
    frames: Iterable[RawFrame | None],
    detector: FaceDetector,
    report: RunReport,
    track: TrackConfig | None = None,
    *,
    recorded: bool = True,
    realtime: Realtime | None = None,
) -> Iterator[Held[RawFrame]]:
    """Detect and track `frames`, yielding each (except late ones dropped) once vouched for.

    Each frame gets its own detections plus the tracker's held predictions (the union: tracking
    only ever adds masks). Recorded media (`recorded=True`) hold back `track.lookahead` frames so
    that a face is also covered on the frames before its first detection and across short gaps;
    a live source holds back `realtime.lookahead` at most, and half its latency budget at most.
    `None` in `frames` is a live source's idle tick: a chance to let out frames that are due.
    Any failure on a frame marks it failed: it will be obscured whole (fail closed).
    """
    cfg = track or TrackConfig()
    window = cfg.lookahead if recorded else (realtime.lookahead if realtime else 0)
    every = realtime.detect_every if realtime else 1
    tracker = Tracker(cfg, backfill=window)
    held: Lookahead[RawFrame] = Lookahead(
        window, realtime.after if realtime and not recorded else 0
    )
    due = realtime.hold_over if realtime else None
    n = 0
    for raw in frames:
        if raw is not None:
            if realtime is not None and realtime.is_late(raw):
                # Late before the detector could even start: searching it would only make the
                # frames behind it late too.
                if realtime.late == "drop":
                    report.fail("late", dropped=True)
                    continue
                # Obscured whole; still a frame to the tracker, so that its look-back counts
                # the frames the window holds.
                tracker.update(Detections.empty(), raw.height, raw.width)
                yield from held.push(raw, Coverage(Detections.empty()), "late", searched=False)
                continue
            searched = n % every == 0
            n += 1
            found, failed = (
                _search(detector, raw, report) if searched else (Detections.empty(), None)
            )
            start = time.perf_counter()
            try:
                coverage = tracker.update(found, raw.height, raw.width)
            except Exception as exc:  # boxes the tracker cannot handle (NaN, wrong shape)
                failed = failed or f"tracker: {type(exc).__name__}"
                coverage = Coverage(Detections.empty())
            # Taken out at once: the time spent downstream of a yield is not tracking.
            out = list(held.push(raw, coverage, failed, searched=searched))
            report.track.add((time.perf_counter() - start) * 1000.0)
            yield from out
        if due is not None:
            yield from held.release(due)
    # The stream ended before the searches these frames wait for: search them now, in full
    # (a cycle of K covers the whole picture in any K searches).
    passes = realtime.cycle if realtime else 1
    for tail in held.unvouched():
        for _ in range(passes):
            found, failed = _search(detector, tail.item, report)
            tail.boxes.append(found)
            tail.failed = tail.failed or failed
        tail.searched = True
    yield from held.flush()


def _search(
    detector: FaceDetector, raw: RawFrame, report: RunReport
) -> tuple[Detections, str | None]:
    start = time.perf_counter()
    try:
        if raw.lores is None:
            found = detector.detect(raw.pixels)
        else:
            found = _scaled(detector.detect(raw.lores), raw.lores, raw)
    except Exception as exc:  # any detector failure: the frame cannot be vouched for
        return Detections.empty(), f"detector: {type(exc).__name__}"
    report.detect.add((time.perf_counter() - start) * 1000.0)
    return found, None


def _scaled(found: Detections, lores: np.ndarray, raw: RawFrame) -> Detections:
    """Boxes found on the `lores` picture, in `pixels` coordinates."""
    sx, sy = raw.width / lores.shape[1], raw.height / lores.shape[0]
    factor = np.array([sx, sy, sx, sy], np.float32)
    return Detections((found.xyxy * factor).astype(np.float32), found.scores)


def redact_held(
    frames: Iterable[Held[RawFrame]],
    redactor: Redactor,
    report: RunReport,
    realtime: Realtime | None = None,
) -> Iterator[RedactedFrame]:
    """Redact each vouched frame; obscure a failed one; on a live source, a frame past its
    deadline is dropped or obscured (`realtime.late`) instead."""
    for held in frames:
        if realtime is not None and held.failed is None and realtime.is_late(held.item):
            if realtime.late == "drop":
                report.fail("late", dropped=True)
                continue
            held.failed = "late"
        yield _redact(redactor, held, report)


def redact_stream(
    frames: Iterable[RawFrame],
    detector: FaceDetector,
    redactor: Redactor,
    report: RunReport,
    track: TrackConfig | None = None,
    *,
    recorded: bool = True,
) -> Iterator[RedactedFrame]:
    """Detect, track and redact `frames`, yielding one redacted frame per input frame, in order
    (a live source, `recorded=False`, gets no look-ahead: only the past and predictions)."""
    held = vouch(frames, detector, report, track, recorded=recorded)
    yield from redact_held(held, redactor, report)


def _redact(redactor: Redactor, held: Held[RawFrame], report: RunReport) -> RedactedFrame:
    if held.failed is None:
        start = time.perf_counter()
        try:
            frame = redactor.redact(held.item, held.faces())
        except Exception as exc:  # a half-redacted frame must not survive
            held.failed = f"redactor: {type(exc).__name__}"
        else:
            report.redact.add((time.perf_counter() - start) * 1000.0)
            report.faces += frame.faces
            return frame
    report.fail(held.failed, dropped=False)
    return redactor.obscure(held.item)
