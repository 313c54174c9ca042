"""Temporal coverage: tracking and look-ahead only ever add masks, cover faces across detector
misses (before, between and after detections), and keep memory bounded."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Clip
from edge.capture import VideoFileSource
from edge.config import Config, DetectorConfig, TrackConfig
from edge.detect import Detections, build_detector
from edge.evaluate.protection import is_protected
from edge.frames import Pixels, RawFrame
from edge.redact import Redactor
from edge.run import RunReport, redact_stream
from edge.track import Coverage, Lookahead, Tracker

H, W = 720, 1280


def dets(*boxes: tuple[float, float, float, float]) -> Detections:
    """Detections from (x, y, w, h) boxes."""
    if not boxes:
        return Detections.empty()
    xywh = np.array(boxes, np.float32)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return Detections(xyxy, np.full(len(boxes), 0.9, np.float32))


def covers(found: Detections, box: tuple[float, float, float, float], share: float = 0.9) -> bool:
    """Whether some box in `found` contains at least `share` of `box`'s area."""
    x, y, w, h = box
    for x0, y0, x1, y1 in found.xyxy.tolist():
        inter = max(0.0, min(x1, x + w) - max(x0, x)) * max(0.0, min(y1, y + h) - max(y0, y))
        if inter >= share * w * h:
            return True
    return False


def test_a_face_is_covered_from_its_first_detected_frame() -> None:
    tracker = Tracker(TrackConfig())
    out = tracker.update(dets((100, 100, 50, 60)), H, W)
    assert covers(out.boxes, (100, 100, 50, 60), 1.0)


def test_a_lost_face_is_held_with_a_growing_predicted_box_then_released() -> None:
    cfg = TrackConfig(hold_frames=5, growth=0.1)
    tracker = Tracker(cfg)
    for k in range(4):  # moving right by 10 px per frame
        tracker.update(dets((100 + 10 * k, 100, 50, 60)), H, W)
    sizes = []
    for k in range(4, 4 + cfg.hold_frames):
        out = tracker.update(Detections.empty(), H, W)
        assert len(out.boxes) == 1, k
        # where the face would be if it kept moving
        assert covers(out.boxes, (100 + 10 * k, 100, 50, 60), 1.0), k
        sizes.append(float(out.boxes.widths[0]))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] * 1.3
    assert len(tracker.update(Detections.empty(), H, W).boxes) == 0
    assert len(tracker) == 0


def test_held_boxes_are_clipped_and_dropped_outside_the_frame() -> None:
    tracker = Tracker(TrackConfig(hold_frames=30, growth=0.0))
    for k in range(3):  # leaving through the right edge at 40 px per frame
        tracker.update(dets((1180 + 40 * k, 300, 60, 60)), H, W)
    for _ in range(30):
        out = tracker.update(Detections.empty(), H, W)
        assert (out.boxes.xyxy[:, 2] <= W).all() and (out.boxes.xyxy[:, 0] >= 0).all()
    assert len(out.boxes) == 0


def test_non_finite_boxes_are_refused() -> None:
    bad = Detections(np.full((1, 4), np.nan, np.float32), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        Tracker(TrackConfig()).update(bad, H, W)


box_strategy = st.tuples(
    st.floats(0, W - 20), st.floats(0, H - 20), st.floats(8, 300), st.floats(8, 300)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(box_strategy, max_size=5), min_size=1, max_size=30))
def test_every_detection_is_always_redacted(frames: list[list[tuple[float, ...]]]) -> None:
    """The tracker adds boxes; it never drops, shrinks or moves a detection."""
    tracker = Tracker(TrackConfig(), backfill=10)
    for boxes in frames:
        found = dets(*boxes)  # type: ignore[arg-type]
        out = tracker.update(found, H, W)
        assert np.array_equal(out.boxes.xyxy[: len(found)], found.xyxy)
        assert all(ago >= 1 for ago in out.backfill)


def test_a_new_face_is_offered_to_the_frames_before_it() -> None:
    tracker = Tracker(TrackConfig(), backfill=4)
    tracker.update(Detections.empty(), H, W)
    out = tracker.update(dets((300, 200, 40, 40)), H, W)
    assert sorted(out.backfill) == [1, 2, 3]  # a one-frame false alarm leaves no long trail
    for ago, boxes in out.backfill.items():
        assert covers(boxes, (300, 200, 40, 40), 1.0), ago
    # Seen again: the motion is known and is run backwards over the whole window.
    out = tracker.update(dets((320, 200, 40, 40)), H, W)
    assert sorted(out.backfill) == [2, 3, 4]
    assert covers(out.backfill[3], (260, 200, 40, 40), 1.0)
    assert covers(out.backfill[4], (240, 200, 40, 40), 1.0)


def test_hold_grows_with_the_evidence() -> None:
    def held_for(hits: int) -> int:
        tracker = Tracker(TrackConfig(hold_frames=12))
        for k in range(hits):
            tracker.update(dets((100 + k, 100, 50, 60)), H, W)
        frames = 0
        while len(tracker.update(Detections.empty(), H, W).boxes):
            frames += 1
        return frames

    assert held_for(1) == 3
    assert held_for(2) == 6
    assert held_for(10) == 12


def test_a_gap_is_bridged_from_both_sides() -> None:
    tracker = Tracker(TrackConfig(hold_frames=10), backfill=10)
    tracker.update(dets((100, 100, 40, 40)), H, W)
    tracker.update(dets((110, 100, 40, 40)), H, W)
    for _ in range(3):
        tracker.update(Detections.empty(), H, W)
    # Found again 60 px further on after a 3-frame gap (faster than the held prediction).
    out = tracker.update(dets((170, 100, 40, 40)), H, W)
    for ago, x in [(1, 155), (2, 140), (3, 125)]:
        assert covers(out.backfill[ago], (x, 100, 40, 40), 1.0), ago


def test_live_mode_offers_nothing_backwards() -> None:
    tracker = Tracker(TrackConfig(), backfill=0)
    tracker.update(Detections.empty(), H, W)
    assert tracker.update(dets((300, 200, 40, 40)), H, W).backfill == {}


def test_lookahead_holds_at_most_k_frames_and_keeps_order() -> None:
    window: Lookahead[int] = Lookahead(3)
    out: list[int] = []
    for k in range(10):
        out += [h.item for h in window.push(k, Coverage(Detections.empty()))]
        assert len(window._held) <= 3
    out += [h.item for h in window.flush()]
    assert out == list(range(10))


def test_lookahead_adds_backfill_only_to_frames_it_still_holds() -> None:
    window: Lookahead[int] = Lookahead(2)
    released = list(window.push(0, Coverage(Detections.empty())))
    released += window.push(1, Coverage(Detections.empty()))
    released += window.push(2, Coverage(dets((1, 1, 5, 5)), {1: dets((2, 2, 5, 5)), 5: dets()}))
    released += window.flush()
    assert [h.item for h in released] == [0, 1, 2]
    assert [len(h.faces()) for h in released] == [0, 1, 1]


class MissingDetector:
    """Test double for detector misses: the real detector, blind on the given frames."""

    name = "missing"

    def __init__(self, blind: set[int]) -> None:
        self.inner = build_detector(DetectorConfig())
        self.blind = blind
        self.calls = 0

    def detect(self, image: Pixels) -> Detections:
        k, self.calls = self.calls, self.calls + 1
        return Detections.empty() if k in self.blind else self.inner.detect(image)


def frames_of(clip: Clip) -> Iterator[RawFrame]:
    yield from VideoFileSource(clip.path).frames()


def redacted_leaks(clip: Clip, blind: set[int], *, recorded: bool) -> list[int]:
    originals = [f.pixels.copy() for f in frames_of(clip)]
    report = RunReport()
    out = redact_stream(
        frames_of(clip),
        MissingDetector(blind),
        Redactor(Config().redact),
        report,
        TrackConfig(),
        recorded=recorded,
    )
    leaks = []
    for k, frame in enumerate(out):
        for face in clip.truth[k]:
            if not is_protected(originals[k], frame.pixels, face):
                leaks.append(k)
    assert report.obscured == 0
    return sorted(set(leaks))


def test_misses_before_between_and_after_detections_are_covered(sample_clip: Clip) -> None:
    # The detector sees nothing on the first 5 frames, a 4-frame stretch, and the last 3 frames.
    n = len(sample_clip.truth)
    blind = {0, 1, 2, 3, 4, 20, 21, 22, 23, n - 3, n - 2, n - 1}
    assert redacted_leaks(sample_clip, blind, recorded=True) == []


def test_live_mode_covers_gaps_but_cannot_see_the_future(sample_clip: Clip) -> None:
    leaks = redacted_leaks(sample_clip, {0, 1, 2, 20, 21, 22, 23}, recorded=False)
    assert leaks == [0, 1, 2]


def test_a_track_of_weak_scores_only_is_held_briefly() -> None:
    tracker = Tracker(TrackConfig(hold_frames=12))
    for k in range(6):
        weak = dets((100 + k, 100, 50, 60))
        tracker.update(Detections(weak.xyxy, np.full(1, 0.12, np.float32)), H, W)
    frames = 0
    while len(tracker.update(Detections.empty(), H, W).boxes):
        frames += 1
    assert frames == 3


def test_lookahead_lets_out_early_only_frames_vouched_for_from_both_sides() -> None:
    """Live: a frame leaves before the window is full only when it is due and a searched frame
    is at or after it (or it failed and will be obscured); the tail after the last search is
    what the end of a stream must still search."""
    window: Lookahead[int] = Lookahead(5)
    empty = Coverage(Detections.empty())
    pattern = [True, False, False, True, False]  # searched: frames 0 and 3
    for item, searched in enumerate(pattern):
        assert list(window.push(item, empty, searched=searched)) == []
    released = [h.item for h in window.release(lambda item: True)]
    assert released == [0, 1, 2, 3]  # 4 has no search after it
    assert [h.item for h in window.unvouched()] == [4]
    assert [h.item for h in window.release(lambda item: True)] == []
    assert list(window.push(5, empty, "late", searched=False)) == []
    assert [h.item for h in window.release(lambda item: item != 4)] == []  # 4 not due: waits
    assert [h.item for h in window.release(lambda item: True)] == []  # 4 still unvouched
    assert list(window.push(6, empty, searched=True)) == []
    assert [h.item for h in window.release(lambda item: True)] == [4, 5, 6]
