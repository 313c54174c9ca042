"""The tracker (`edge.track.tracker`): it only ever adds masks; it follows every face by optical
flow between detections; a face missed where it was searched is let go after its misses, one
that was not searched is followed for `hold_frames`; and a face found for the first time is
reported as a birth, to be followed back. On real moving faces (the sample clip), through the
whole per-frame loop (`edge.run.vouch`), detector misses before, between and after detections
stay covered."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Clip
from edge.capture import VideoFileSource
from edge.config import Config, DetectorConfig, TrackConfig
from edge.detect import Detections, build_detector
from edge.detect.centerface import CenterFace
from edge.detect.passes import Pass
from edge.evaluate.protection import is_protected
from edge.frames import Pixels, RawFrame
from edge.redact import Redactor
from edge.run import Realtime, RunReport, redact_held, vouch
from edge.run.schedule import Schedule
from edge.track import Tracker
from edge.track.flow import shift

H, W = 360, 640
BLANK = np.zeros((H, W), np.uint8)  # nothing for the flow to follow
FACE = (200.0, 120.0, 60.0, 70.0)  # x, y, w, h on the first frame
STEP = 6  # px per frame the face moves right


def dets(*boxes: tuple[float, float, float, float], score: float = 0.9) -> Detections:
    """Detections from (x, y, w, h) boxes."""
    if not boxes:
        return Detections.empty()
    xywh = np.array(boxes, np.float32)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return Detections(xyxy, np.full(len(boxes), score, np.float32))


def covers(found: Detections, box: tuple[float, float, float, float], share: float = 0.9) -> bool:
    """Whether some box in `found` contains at least `share` of `box`'s area."""
    x, y, w, h = box
    for x0, y0, x1, y1 in found.xyxy.tolist():
        inter = max(0.0, min(x1, x + w) - max(x0, x)) * max(0.0, min(y1, y + h) - max(y0, y))
        if inter >= share * w * h:
            return True
    return False


def _texture(seed: int, shape: tuple[int, int]) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return np.asarray(cv2.GaussianBlur(noise, (5, 5), 1.2), dtype=np.uint8)


def scene(
    k: int, step: int = STEP, start: float = FACE[0]
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Frame k of a still textured background with a textured patch (the face) moving right by
    `step` px a frame from x = `start`; and where the patch is."""
    picture = _texture(5, (H, W))
    _, y, w, h = FACE
    x = start + k * step
    patch = _texture(6, (int(h), int(w)))
    visible = max(0, min(int(w), W - int(x)))
    picture[int(y) : int(y + h), int(x) : int(x) + visible] = patch[:, :visible]
    return picture, (x, y, w, h)


def followed_frames(tracker: Tracker, start: int, covered: bool, limit: int = 60) -> int:
    """Feed frames with no detection from frame `start` on, each searched where the face is
    (`covered`) or not; count the frames the face stays covered until the tracker drops it."""
    for k in range(start, start + limit):
        picture, truth = scene(k)
        out = tracker.update(Detections.empty(), picture, lambda box: covered)
        if len(out.boxes) == 0:
            assert len(tracker) == 0
            return k - start
        assert covers(out.boxes, truth, 1.0), k
    return limit


def test_the_pictures_motion_is_measured_against_the_frame_before_even_across_a_new_size() -> None:
    # The tracker keeps the last frame's small copy for the next frame's motion: it must be the
    # copy of that very frame, and a frame of another size (a camera reopened) starts afresh.
    def coarse(seed: int, height: int, width: int) -> np.ndarray:  # detail the copy keeps
        small = _texture(seed, (height // 16, width // 16))
        return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC))

    tracker = Tracker(TrackConfig())
    frames = [np.roll(coarse(7, H, W), 16 * k, axis=1) for k in range(3)]
    other = [np.roll(coarse(8, H // 2, W // 2), -16 * k, axis=0) for k in range(3)]
    before = None
    for picture in [*frames, *other, *frames]:
        tracker.update(Detections.empty(), picture)
        if before is None or before.shape != picture.shape:
            assert np.array_equal(tracker.moved, np.zeros(2))
        else:
            assert np.array_equal(tracker.moved, shift(before, picture))
            assert np.abs(tracker.moved).max() >= 3.0  # it moved, and the measure saw it
        before = picture


def test_a_face_is_covered_from_its_first_detected_frame_and_is_a_birth() -> None:
    tracker = Tracker(TrackConfig())
    picture, truth = scene(0)
    out = tracker.update(dets(truth), picture)
    assert covers(out.boxes, truth, 1.0)
    assert len(out.births) == 1 and np.allclose(out.births[0], out.boxes.xyxy[0])


def test_a_face_seen_again_is_no_birth_and_a_new_one_is() -> None:
    tracker = Tracker(TrackConfig())
    picture, first = scene(0)
    tracker.update(dets(first), picture)
    picture, moved = scene(1)
    assert tracker.update(dets(moved), picture).births == []
    other = (500.0, 40.0, 40.0, 40.0)
    picture, moved = scene(2)
    births = tracker.update(dets(moved, other), picture).births
    assert len(births) == 1 and np.allclose(births[0], [500, 40, 540, 80])


def test_a_face_not_searched_is_followed_for_hold_frames_then_let_go() -> None:
    tracker = Tracker(TrackConfig(hold_frames=8))
    for k in range(2):
        picture, truth = scene(k)
        tracker.update(dets(truth), picture)
    # Followed by the flow, tight on the moving face (checked in `followed_frames`), not grown.
    assert followed_frames(tracker, 2, covered=False) == 8


def test_a_face_missed_where_it_was_searched_is_let_go_after_its_misses() -> None:
    def drawn_after_misses(hits: int, score: float) -> int:
        tracker = Tracker(TrackConfig(hold_frames=30))
        for k in range(hits):
            picture, truth = scene(k)
            tracker.update(dets(truth, score=score), picture)
        return followed_frames(tracker, hits, covered=True)

    # A face detected twice with a good score survives two searches that miss it (a detector
    # misses a face now and then); one seen once, or only weakly (false alarms on texture
    # look like that), one.
    assert drawn_after_misses(2, 0.9) == 2
    assert drawn_after_misses(1, 0.9) == 1
    assert drawn_after_misses(4, 0.15) == 1


def test_a_face_is_followed_across_a_gap_and_taken_up_again_by_its_detection() -> None:
    tracker = Tracker(TrackConfig(hold_frames=10))
    for k in range(2):
        picture, truth = scene(k, step=10)
        tracker.update(dets(truth), picture)
    for k in range(2, 5):  # the detector does not see it: followed where it moved
        picture, truth = scene(k, step=10)
        out = tracker.update(Detections.empty(), picture)
        assert covers(out.boxes, truth, 1.0), k
        assert (out.boxes.widths < 1.2 * FACE[2]).all(), k  # followed, not grown to cover it
    picture, truth = scene(5, step=10)
    out = tracker.update(dets(truth), picture)
    assert out.births == [] and len(tracker) == 1


def test_boxes_are_clipped_to_the_frame_and_dropped_once_outside() -> None:
    tracker = Tracker(TrackConfig(hold_frames=60))
    for k in range(2):
        picture, truth = scene(k, step=10, start=480.0)
        tracker.update(dets(truth), picture)
    for k in range(2, 30):  # it leaves through the right edge at 10 px a frame
        picture, truth = scene(k, step=10, start=480.0)
        out = tracker.update(Detections.empty(), picture)
        assert (out.boxes.xyxy[:, 2] <= W).all() and (out.boxes.xyxy[:, 0] >= 0).all()
        if truth[0] + truth[2] <= W:  # followed while it is in the picture
            assert covers(out.boxes, truth, 1.0), k
    assert len(out.boxes) == 0 and len(tracker) == 0


def test_non_finite_boxes_are_refused() -> None:
    bad = Detections(np.full((1, 4), np.nan, np.float32), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        Tracker(TrackConfig()).update(bad, BLANK)


box_strategy = st.tuples(
    st.floats(0, W - 20), st.floats(0, H - 20), st.floats(8, 300), st.floats(8, 300)
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(box_strategy, max_size=5), min_size=1, max_size=30),
    st.sampled_from([None, True, False]),
)
def test_every_detection_is_always_redacted(
    frames: list[list[tuple[float, ...]]], searched: bool | None
) -> None:
    """The tracker adds boxes; it never drops, shrinks or moves a detection; its births are
    detections of the frame."""
    tracker = Tracker(TrackConfig())
    for boxes in frames:
        found = dets(*boxes)  # type: ignore[arg-type]
        covered = None if searched is None else (lambda box: bool(searched))
        out = tracker.update(found, BLANK, covered)
        assert np.array_equal(out.boxes.xyxy[: len(found)], found.xyxy)
        assert all(any(np.array_equal(b, d) for d in found.xyxy) for b in out.births)


# --- through the per-frame loop, on real moving faces ------------------------------------------


class Missing:
    """Test double for detector misses: the real detector, blind on the given frames (by the
    order of its calls)."""

    name = "missing"

    def __init__(self, blind: set[int]) -> None:
        inner = build_detector(DetectorConfig())
        assert isinstance(inner, CenterFace)
        self.inner = inner
        self.blind = blind
        self.calls = 0

    def blinded(self) -> bool:
        k, self.calls = self.calls, self.calls + 1
        return k in self.blind

    def detect(self, image: Pixels) -> Detections:
        return Detections.empty() if self.blinded() else self.inner.detect(image)


class MissingSearching(Missing):
    """The same, with the real detector's passes: a run may spread them over frames."""

    def passes(self, height: int, width: int) -> list[Pass]:
        return self.inner.passes(height, width)

    def search(self, image: Pixels, passes: Sequence[Pass], cycle: int | None) -> Detections:
        return Detections.empty() if self.blinded() else self.inner.search(image, passes, cycle)


def frames_of(clip: Clip) -> Iterator[RawFrame]:
    yield from VideoFileSource(clip.path).frames()


def live_frames_of(clip: Clip) -> Iterator[RawFrame]:
    """The clip as a live source gives it: each frame stamped with the time it is taken."""
    for frame in frames_of(clip):
        frame.captured = time.monotonic()
        yield frame


def redacted_leaks(
    clip: Clip, blind: set[int], *, sweep: int | None, live: bool = False, hold_ms: float = 0.0
) -> list[int]:
    """The frames on which a face of the clip is left clear. `sweep`: the detector's regions
    spread over that many frames (None: a detector without passes, every frame searched
    whole). `live`: the run has a deadline (an hour: never reached here), and holds a frame
    vouched for until `hold_ms` after its capture (at most `track.lookahead` frames)."""
    originals = [f.pixels.copy() for f in frames_of(clip)]
    detector = Missing(blind) if sweep is None else MissingSearching(blind)
    schedule = Schedule(detector, sweep=sweep or 1)
    report = RunReport()
    realtime = Realtime(max_latency_ms=3.6e6, hold_ms=hold_ms) if live else None
    frames = live_frames_of(clip) if live else frames_of(clip)
    held = vouch(frames, detector, report, TrackConfig(), schedule=schedule, realtime=realtime)
    leaks = []
    for k, frame in enumerate(redact_held(held, Redactor(Config().redact), report)):
        assert frame.index == k
        for face in clip.truth[k]:
            if not is_protected(originals[k], frame.pixels, face):
                leaks.append(k)
    assert report.obscured == 0 and report.dropped == 0
    return sorted(set(leaks))


@pytest.mark.parametrize("sweep", [None, 4], ids=["whole", "sweep-4"])
def test_recorded_misses_before_between_and_after_detections_are_covered(
    sample_clip: Clip, sweep: int | None
) -> None:
    # The detector sees nothing on the first 5 frames, a 4-frame stretch, and the last 3 frames:
    # the faces found on frame 5 are followed back onto the frames held before it
    # (`track.lookahead`), and followed on through the gaps.
    n = len(sample_clip.truth)
    blind = {0, 1, 2, 3, 4, 20, 21, 22, 23, n - 3, n - 2, n - 1}
    assert redacted_leaks(sample_clip, blind, sweep=sweep) == []


def test_live_frames_wait_for_their_searches_and_no_longer(sample_clip: Clip) -> None:
    blind = {0, 1, 2, 20, 21, 22, 23}
    # Searched whole, a live frame leaves at once: a face the detector first sees on frame 3
    # cannot be drawn on the frames before it, which are gone (gaps are still followed).
    assert redacted_leaks(sample_clip, blind, sweep=None, live=True) == [0, 1, 2]
    # Spread over 4 frames, frames 0-2 wait for the rest of their searches: the faces found on
    # frame 3 are followed back onto them.
    assert redacted_leaks(sample_clip, blind, sweep=4, live=True) == []


def test_live_frames_held_back_get_the_faces_found_after_them(sample_clip: Clip) -> None:
    # The detector misses the faces on frames 0-5 although it searched all of them: found on
    # frame 6, they are drawn on the frames held back for that (here, all the window holds).
    blind = {0, 1, 2, 3, 4, 5}
    assert redacted_leaks(sample_clip, blind, sweep=None, live=True) == [0, 1, 2, 3, 4, 5]
    assert redacted_leaks(sample_clip, blind, sweep=None, live=True, hold_ms=3.6e6) == []
