"""The fine pass over video frames (`edge.detect.sweep`): its regions, how a run spreads them over
frames (`edge.run.schedule`), and the real CenterFace model finding a bystander-sized face with
it."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, ROOT
from edge.config import WAIT_SLACK, DetectorConfig, load_config
from edge.detect import build_detector
from edge.detect.centerface import CenterFace
from edge.detect.detections import Detections
from edge.detect.passes import Pass, shrunk
from edge.detect.sweep import grid_regions
from edge.errors import ConfigError
from edge.frames import Pixels, RawFrame
from edge.run import Realtime, RunReport, vouch
from edge.run.schedule import Schedule
from edge.track.flow import grey

Box = tuple[float, float, float, float]
CONFIGS = ROOT / "configs"


def _inside(box: Box, region: tuple[int, int, int, int]) -> bool:
    x, y, w, h = box
    x0, y0, x1, y1 = region
    return x0 <= x and y0 <= y and x + w <= x1 and y + h <= y1


@pytest.mark.parametrize(("rows", "cols", "margin"), [(1, 4, 32), (2, 3, 20), (3, 1, 8)])
def test_every_face_up_to_twice_the_margin_lies_whole_in_one_region(
    rows: int, cols: int, margin: int
) -> None:
    height, width = 720, 1280
    regions = grid_regions(height, width, rows, cols, margin)
    assert len(regions) == rows * cols
    assert all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1 in regions)
    side = 2 * margin
    for y in range(0, height - side + 1, 7):
        for x in range(0, width - side + 1, 7):
            face = (float(x), float(y), float(side), float(side))
            assert any(_inside(face, r) for r in regions), f"face at {x},{y} in no region"


def test_a_face_wider_than_twice_the_margin_can_fall_between_regions() -> None:
    # The bound is tight: it is why larger faces are left to the whole-frame pass.
    regions = grid_regions(720, 1280, 1, 4, 32)
    face = (320.0 - 33.0, 100.0, 66.0, 66.0)  # across the first boundary, 1 px too wide
    assert not any(_inside(face, r) for r in regions)


def test_the_profile_rejects_an_empty_grid_and_a_wait_its_budget_cannot_hold(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[detector.centerface]\nfine_grid = [0, 2]\n")
    with pytest.raises(ConfigError, match="fine_grid"):
        load_config(path)
    # The whole-frame pass spread wider than the strips sets the wait too: a budget that holds
    # the wait of a sweep of 2 at 30 frames/s (2 frames and the slack) is 2 frames short when
    # the whole frame is searched every 4th.
    budget = f"[live]\nfps = 30.0\nmax_latency_ms = {(2 + WAIT_SLACK) * 1000 / 30 + 10:.0f}\n"
    path.write_text(f"[schedule]\nsweep = 2\nwhole_every = 4\n{budget}")
    with pytest.raises(ConfigError, match="max_latency_ms"):
        load_config(path)
    path.write_text(f"[schedule]\nsweep = 2\nwhole_every = 2\n{budget}")
    assert load_config(path).schedule.whole_every == 2


def _bystander_frame(astronaut: np.ndarray) -> tuple[np.ndarray, Box]:
    """A 1280x720 frame with the real astronaut face about 24 px tall, in the third strip."""
    import skimage.data

    frame = cv2.resize(
        cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR),
        (1280, 720),
        interpolation=cv2.INTER_AREA,
    )
    fx, fy, fw, fh = ASTRONAUT_FACE
    scale = 0.2
    cut = cv2.resize(
        astronaut[0:330, 100:360], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
    )
    x, y = 760, 420
    frame[y : y + cut.shape[0], x : x + cut.shape[1]] = cut
    return frame, (x + (fx - 100) * scale, y + fy * scale, fw * scale, fh * scale)


def _found(found_xyxy: np.ndarray, face: Box) -> bool:
    x, y, w, h = face
    cx, cy = x + w / 2, y + h / 2
    return any(
        x0 <= cx <= x1 and y0 <= cy <= y1 and (x1 - x0) < 4 * w for x0, y0, x1, y1 in found_xyxy
    )


def test_the_fine_pass_finds_a_face_the_whole_frame_pass_misses(astronaut: np.ndarray) -> None:
    frame, face = _bystander_frame(astronaut)
    coarse = CenterFace(max_side=320, max_downscale=4.0)
    assert not _found(coarse.detect(frame).xyxy, face)
    fine = CenterFace(max_side=320, max_downscale=4.0, fine_scale=0.75, fine_grid=(1, 4))
    assert _found(fine.detect(frame).xyxy, face)


def test_a_sweep_finds_it_on_the_frame_that_searches_its_strip(astronaut: np.ndarray) -> None:
    frame, face = _bystander_frame(astronaut)
    detector = CenterFace(max_side=320, max_downscale=4.0, fine_scale=0.75, fine_grid=(1, 4))
    schedule = Schedule(detector, sweep=4)
    hits = []
    for n in range(8):
        plan = schedule.plan(n, grey(frame))
        hits.append(_found(detector.search(frame, plan.passes, plan.cycle).xyxy, face))
        schedule.searched(plan)
    # x = 760..790 lies in the third strip only (640-32 .. 960+32): frames 2 and 6.
    assert hits == [False, False, True, False, False, False, True, False]


def test_recorded_media_spread_the_strips_too_and_a_full_search_finds_it_at_once(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[detector.centerface]\nmax_side = 320\nmax_downscale = 4.0\nfine_scale = 0.75\n"
    )
    cfg = load_config(path)
    frame, face = _bystander_frame(astronaut)
    detector = build_detector(cfg.detector)
    assert isinstance(detector, CenterFace)
    # `detect` is every pass at once: what a frame that cannot wait for its sweep gets.
    assert all(_found(detector.detect(frame).xyxy, face) for _ in range(3))
    schedule = Schedule.of(detector, cfg.schedule)  # the default [schedule]: a sweep of 4
    hits = 0
    for n in range(4):
        plan = schedule.plan(n, grey(frame))
        hits += _found(detector.search(frame, plan.passes, plan.cycle).xyxy, face)
        schedule.searched(plan)
    assert hits == 1


def test_the_shipped_live_profiles_spread_a_fine_pass() -> None:
    for name in ("bodycam", "doorway"):
        cfg = load_config(CONFIGS / f"{name}.toml")
        assert cfg.detector.centerface.fine_scale > 0
        assert 1 < cfg.schedule.sweep <= cfg.schedule.longest_sweep
        # A face that appears just after its strip was searched is found a sweep later and
        # followed back: the frames before it wait that long. `veil run` may lengthen the
        # sweep to its longest to keep up at the camera's rate: the budget holds that wait.
        plan = cfg.schedule
        assert plan.wait(plan.longest_sweep) * 1000.0 / cfg.live.fps <= cfg.live.max_latency_ms
        # Recorded, the window holds them too.
        assert cfg.track.lookahead >= cfg.schedule.wait()


def test_the_default_searches_video_at_full_resolution_too(monkeypatch: pytest.MonkeyPatch) -> None:
    detector = build_detector(DetectorConfig())
    assert isinstance(detector, CenterFace) and detector.fine_scale == 1.0
    sizes: list[tuple[int, int]] = []
    real = CenterFace._pass

    def counted(self: CenterFace, session: object, image: np.ndarray, h: int, w: int, *rest):  # type: ignore[no-untyped-def]
        sizes.append((h, w))
        return real(self, session, image, h, w, *rest)

    monkeypatch.setattr(CenterFace, "_pass", counted)
    detector.detect(np.zeros((720, 1280, 3), np.uint8))
    # 640x352 for the whole frame, then four full-resolution strips of 352 + 2 x 32 px.
    assert sorted(sizes) == sorted([(352, 640)] + [(704, 352)] * 2 + [(704, 384)] * 2)
    sizes.clear()
    detector.detect(np.zeros((360, 640, 3), np.uint8))
    assert sizes == [(352, 640)]  # already searched at full size: no fine pass


def test_passes_side_by_side_find_what_one_thread_finds(astronaut: np.ndarray) -> None:
    frame, _ = _bystander_frame(astronaut)
    kwargs = {"max_side": 320, "max_downscale": 4.0, "fine_scale": 0.75}
    one = CenterFace(**kwargs, fine_grid=(1, 4), threads=1).detect(frame)  # type: ignore[arg-type]
    two = CenterFace(**kwargs, fine_grid=(1, 4), threads=2).detect(frame)  # type: ignore[arg-type]
    assert len(one) > 0
    order_one, order_two = np.lexsort(one.xyxy.T), np.lexsort(two.xyxy.T)
    np.testing.assert_allclose(one.xyxy[order_one], two.xyxy[order_two], atol=1e-3)
    np.testing.assert_allclose(one.scores[order_one], two.scores[order_two], atol=1e-5)


def test_on_a_pi_camera_the_fine_pass_sees_the_full_picture() -> None:
    # picamera2 sources detect on their lores stream; the fine pass's scale is of that stream.
    from edge.capture.picamera2_source import lores_size

    for name in ("bodycam", "doorway"):
        live = load_config(CONFIGS / f"{name}.toml").live
        assert lores_size(live.width, live.height, live.lores_width) == (live.width, live.height)


class Logging:
    """A detector of one whole pass and two fine regions that finds nothing, and logs which
    frame (its pixel value) each search ran on, and how many passes."""

    name = "logging"

    def __init__(self) -> None:
        self.log: list[tuple[int, int]] = []

    def passes(self, height: int, width: int) -> list[Pass]:
        whole = (0, 0, width, height)
        halves = [(0, 0, width // 2, height), (width // 2, 0, width, height)]
        return [Pass("whole", whole, (height, width), (0.0, 1e9), whole)] + [
            Pass("fine", r, (height, width), (0.0, 1e9), r) for r in halves
        ]

    def search(self, image: Pixels, passes: Sequence[Pass], cycle: int | None) -> Detections:
        self.log.append((int(image[0, 0, 0]), len(passes)))
        return Detections.empty()

    def detect(self, image: Pixels) -> Detections:
        return self.search(image, self.passes(*image.shape[:2]), None)


@pytest.mark.parametrize("live", [False, True], ids=["recorded", "live"])
def test_frames_left_at_the_end_of_a_stream_are_vouched_by_a_full_search_of_the_newest(
    live: bool,
) -> None:
    detector = Logging()
    # The regions over 2 frames, the whole frame every 4th: frames 0-3 are vouched for by the
    # searches of frames 4 and 5; 4 and 5 are not when the stream ends.
    schedule = Schedule(detector, sweep=2, whole_every=4)
    frames = [RawFrame(np.full((8, 8, 3), i, np.uint8), i) for i in range(6)]
    realtime = Realtime(max_latency_ms=1e6) if live else None
    report = RunReport()
    out = list(vouch(frames, detector, report, schedule=schedule, realtime=realtime))
    assert [held.item.index for held in out] == list(range(6))
    assert all(held.failed is None for held in out)
    # One search a frame, as planned; then the newest frame in full, which vouches for both.
    assert detector.log == [(0, 2), (1, 1), (2, 1), (3, 1), (4, 2), (5, 1), (5, 3)]


def test_a_live_frame_vouched_for_leaves_once_held_long_enough() -> None:
    # Every frame is searched whole, so each is vouched for at once; frames 0-2 were captured
    # 10 s ago and leave as soon as they are, frames 3-5 (just captured) wait out the 5 s hold:
    # here, the end of the stream.
    detector = Logging()
    now = time.monotonic()
    events: list[str] = []

    def frames() -> Iterator[RawFrame]:
        for i in range(6):
            events.append(f"in {i}")
            taken = now - 10.0 if i < 3 else time.monotonic()
            yield RawFrame(np.full((8, 8, 3), i, np.uint8), i, captured=taken)

    realtime = Realtime(max_latency_ms=60_000.0, hold_ms=5_000.0)
    for held in vouch(frames(), detector, RunReport(), realtime=realtime):
        assert held.failed is None
        events.append(f"out {held.item.index}")
    assert events == [
        "in 0", "out 0", "in 1", "out 1", "in 2", "out 2", "in 3", "in 4", "in 5",
        "out 3", "out 4", "out 5",
    ]  # fmt: skip


def test_a_video_pass_shrinks_by_whole_blocks_to_nearly_the_exact_average(
    astronaut: np.ndarray,
) -> None:
    frame = np.ascontiguousarray(
        np.tile(astronaut, (2, 3, 1))[:720, :1280]
    )  # detail at every scale
    exact = shrunk(frame, 320, 192, exact=True)
    fast = shrunk(frame, 320, 192, exact=False)
    assert fast.shape == exact.shape == (192, 320, 3)
    # 4 x 4 blocks stretched by 192/180: the same picture, not a resampled one.
    assert np.abs(fast.astype(int) - exact.astype(int)).mean() < 2.0
    # Bilinear at a quarter (the shortcut not taken) is several times further off.
    naive = cv2.resize(frame, (320, 192), interpolation=cv2.INTER_LINEAR)
    assert np.abs(naive.astype(int) - exact.astype(int)).mean() > 3.0
    # A fine region (3/4) keeps the exact average, video or not.
    strip = frame[:, 288:672]
    assert np.array_equal(shrunk(strip, 288, 544, exact=False), shrunk(strip, 288, 544, exact=True))


def test_the_whole_frame_pass_finds_the_same_face_on_video_as_on_a_still(
    astronaut: np.ndarray,
) -> None:
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[200:712, 400:912] = astronaut  # a large face: the whole-frame pass's own
    detector = CenterFace(max_side=320, max_downscale=4.0)
    whole = detector.passes(720, 1280)[:1]
    still = detector.search(frame, whole, None)
    video = detector.search(frame, whole, 0)
    assert len(still) >= 1 and len(video) == len(still)
    best = int(np.argmax(still.scores))
    assert np.abs(video.xyxy[int(np.argmax(video.scores))] - still.xyxy[best]).max() < 8
    assert abs(float(video.scores.max()) - float(still.scores.max())) < 0.1
