"""The per-frame logic every run shares, recorded or live: search sparse, track dense, vouch late.

`vouch` turns frames into `Held` frames that the detector has vouched for, each with every box
gathered for it; `redact_held` makes the `RedactedFrame`s. `redact_stream` chains the two for
in-memory use (`veil eval`); `edge.run.conveyor` runs them in their own threads.

Per frame: the schedule (`edge.run.schedule`) picks the detector's passes; the tracker follows every
known face onto the frame by optical flow and takes the detections; a face found for the first time
is followed back through the frames still held (`edge.track.window`). A frame leaves only once every
part of it has been searched at or after it, so a face that appeared on it has been searched for
since. A detector also misses faces it finds on a later search, so frames are held longer, for the
face to be followed back onto them: recorded media for the whole window (`track.lookahead`
frames), a live frame until `Realtime.hold_ms` after its capture (at most that window). Recorded
media and live sources run the same loop; a live source's frames also have a deadline
(`Realtime`): one not vouched for in time is dropped or fully obscured, never passed clear, and
counted by cause. Any failure on a frame marks it failed: it is obscured whole (fail closed), and
its searches vouch for nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import numpy as np

from edge.config import TrackConfig
from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.detect.passes import Searching
from edge.frames import Pixels, RawFrame, RedactedFrame
from edge.redact.redactor import Redactor
from edge.run.realtime import Realtime
from edge.run.report import RunReport
from edge.run.schedule import Plan, Schedule
from edge.track import Held, Tracker, Window
from edge.track.flow import grey

_SLACK = 2  # frames a window holds beyond the longest wait for a search


def vouch(
    frames: Iterable[RawFrame | None],
    detector: FaceDetector,
    report: RunReport,
    track: TrackConfig | None = None,
    *,
    schedule: Schedule | None = None,
    longest_wait: int | None = None,
    realtime: Realtime | None = None,
) -> Iterator[Held[RawFrame]]:
    """Detect and track `frames`, yielding each (except late ones dropped) once vouched for.

    `schedule`: which passes each frame gets (default: every pass on every frame). Frames held at
    once: at most `track.lookahead`, never fewer than the schedule waits; a frame pushed out
    before it was vouched for gets the rest of its searches at once, or, live, is obscured as
    late (a full search would make every frame behind it late). A live frame vouched for leaves
    once `realtime.hold_ms` have passed since its capture; recorded media leave when pushed out.
    `longest_wait`: the most frames the schedule may come to wait (a live
    run's pace may lengthen its sweep; default: what it waits now). `None` in `frames` is a live
    source's idle tick: a chance to let out frames that are due.
    """
    cfg = track or TrackConfig()
    plan_of = schedule or Schedule(detector)
    needed = (longest_wait or plan_of.wait()) + _SLACK
    held: Window[RawFrame] = Window(max(cfg.lookahead, needed))
    tracker = Tracker(cfg)
    plans: dict[int, Plan] = {}
    n = 0

    def ready(h: Held[RawFrame]) -> bool:
        return h.failed is not None or plan_of.vouched(plans[h.index])

    def due(h: Held[RawFrame]) -> bool:  # live: vouched for, and held as long as it may be
        return h.failed is not None or (
            ready(h) and (realtime is None or realtime.held_enough(h.item))
        )

    def leave(h: Held[RawFrame]) -> Held[RawFrame]:
        plans.pop(h.index, None)
        return h

    for raw in frames:
        if raw is not None:
            if realtime is not None and realtime.is_late(raw):
                # Late before the detector could even start: searching it would only make the
                # frames behind it late too.
                if realtime.late == "drop":
                    report.fail("late", dropped=True)
                    continue
                raw_failed: str | None = "late"
            else:
                raw_failed = None
            picture = _picture(raw)
            seen = grey(picture)
            plan = plan_of.plan(n, seen)
            plans[n] = plan
            found, failed = (Detections.empty(), raw_failed)
            if failed is None:
                found, failed = _search(detector, picture, plan, report, plan_of.dense)
            if failed is None:
                plan_of.searched(plan)
            start = time.perf_counter()
            try:
                coverage = tracker.update(found, seen, None if failed else plan.covered)
            except Exception as exc:  # boxes the tracker cannot handle (NaN, wrong shape)
                failed = failed or f"tracker: {type(exc).__name__}"
                coverage = None
            entry = Held(raw, seen, n, [coverage.boxes] if coverage else [], failed, tracker.moved)
            pushed = list(held.push(entry))
            if coverage is not None:
                # A new face is followed back through every frame held: not only to the last
                # search that "should" have found it, since a detector misses faces near the
                # edge of the sizes a pass is for.
                held.backfill_all(coverage.births, [held.frames] * len(coverage.births))
            report.track.add((time.perf_counter() - start) * 1000.0)
            n += 1
            for out in pushed:
                if ready(out):
                    pass
                elif realtime is not None:  # the window is full: it waited too long
                    out.failed = out.failed or "late"
                else:  # it cannot wait for later searches: they are done at once
                    _complete(detector, plan_of, out, report)
                yield leave(out)
        if realtime is not None:  # recorded media wait: a frame leaves when pushed out
            yield from map(leave, held.release(due))
    # The stream ended before the searches the frames held wait for: the newest one that can be
    # searched is searched in full, which vouches for every frame before it, and what it finds is
    # followed back. Frames that still cannot be vouched for are obscured.
    pending = held.pending()
    if not all(ready(h) for h in pending):
        usable = [i for i, h in enumerate(pending) if h.failed is None]
        cause = "detector: no frame to search"
        if usable:
            at = usable[-1]
            births = _complete(detector, plan_of, pending[at], report)
            held.backfill_all(births, [at] * len(births), at)
            cause = pending[at].failed or cause
        for h in pending:
            if not ready(h):
                h.failed = cause
    yield from map(leave, held.flush())


def _complete(
    detector: FaceDetector, schedule: Schedule, held: Held[RawFrame], report: RunReport
) -> list[np.ndarray]:
    """Search `held`'s frame with every pass (it vouches for itself and every frame before it);
    returns the boxes found that no box on it covered yet (to be followed back)."""
    picture = _picture(held.item)
    height, width = picture.shape[:2]
    plan = Plan(held.index, schedule.passes(height, width), held.index // schedule.sweep)
    found, failed = _search(detector, picture, plan, report, schedule.dense)
    if failed is not None:
        held.failed = held.failed or failed
        return []
    schedule.searched(plan)
    before = held.faces()
    held.boxes.append(found)
    return [box.astype(np.float64) for box in found.xyxy if not _overlaps(box, before)]


def _overlaps(box: np.ndarray, faces: Detections) -> bool:
    if len(faces) == 0:
        return False
    x0 = np.maximum(box[0], faces.xyxy[:, 0])
    y0 = np.maximum(box[1], faces.xyxy[:, 1])
    x1 = np.minimum(box[2], faces.xyxy[:, 2])
    y1 = np.minimum(box[3], faces.xyxy[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
    return bool((inter / area >= 0.5).any())


def _picture(raw: RawFrame) -> Pixels:
    """What the detector and tracker see: the `lores` picture where the source gives one."""
    return raw.pixels if raw.lores is None else raw.lores


def _search(
    detector: FaceDetector, picture: Pixels, plan: Plan, report: RunReport, dense: bool
) -> tuple[Detections, str | None]:
    """`dense`: the schedule searches every frame whole (`detect`), as it does with a still
    image's detector, which has passes too."""
    start = time.perf_counter()
    try:
        if dense:
            found = detector.detect(picture)
        elif isinstance(detector, Searching) and plan.passes:
            found = detector.search(picture, plan.passes, plan.cycle)
        elif isinstance(detector, Searching):
            return Detections.empty(), None  # nothing scheduled on this frame
        else:
            found = detector.detect(picture)
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
    schedule: Schedule | None = None,
) -> Iterator[RedactedFrame]:
    """Detect, track and redact `frames`, yielding one redacted frame per input frame, in order."""
    held = vouch(frames, detector, report, track, schedule=schedule)
    yield from redact_held(held, redactor, report)


def _redact(redactor: Redactor, held: Held[RawFrame], report: RunReport) -> RedactedFrame:
    if held.failed is None:
        start = time.perf_counter()
        try:
            faces = held.faces()
            if held.item.lores is not None:
                faces = _scaled(faces, held.item.lores, held.item)
            frame = redactor.redact(held.item, faces)
        except Exception as exc:  # a half-redacted frame must not survive
            held.failed = f"redactor: {type(exc).__name__}"
        else:
            report.redact.add((time.perf_counter() - start) * 1000.0)
            report.faces += frame.faces
            return frame
    report.fail(held.failed, dropped=False)
    return redactor.obscure(held.item)
