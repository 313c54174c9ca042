"""The picamera2 source against the FAKE picamera2 (tests/fakes/picamera2): real faces at the
camera's rate in the real buffer layouts; main and lores of one exposure, every request released,
capture times, failures, reconnection, the detector on lores."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest

from conftest import FAKES, Clip
from edge.capture.live import LIVE_TIME_BASE, RunClock, SourceLost
from edge.capture.picamera2_source import (
    INSTALL_HINT,
    Picamera2Source,
    SensorClock,
    lores_size,
    yuv420_to_bgr,
)
from edge.capture.spec import OpenOptions, open_source, parse_spec
from edge.config import Config, LiveConfig
from edge.errors import UsageError
from edge.frames import RawFrame

ENV = ("VIDEO", "ABSENT", "FAIL_AFTER", "FAIL", "CLOCK")


def _forget_picamera2() -> None:
    for name in [n for n in sys.modules if n == "picamera2" or n.startswith("picamera2.")]:
        del sys.modules[name]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The fake picamera2 on sys.path, its switches cleared; gone again afterwards."""
    for name in ENV:
        monkeypatch.delenv(f"VEIL_FAKE_PICAMERA2_{name}", raising=False)
    monkeypatch.syspath_prepend(str(FAKES))
    _forget_picamera2()
    module = importlib.import_module("picamera2")
    assert module.FAKE
    yield module
    for camera in module.FAKE_OPENED:
        camera.close()
    _forget_picamera2()


@pytest.fixture
def video(fake: ModuleType, sample_clip: Clip, monkeypatch: pytest.MonkeyPatch) -> Clip:
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_VIDEO", str(sample_clip.path))
    return sample_clip


def collect(
    source: Any,
    count: int,
    clock: RunClock,
    each: Callable[[RawFrame], None] | None = None,
    timeout: float = 30.0,
) -> list[RawFrame]:
    """`count` frames from `source` (closed afterwards); a watchdog stops a stuck run."""
    watchdog = threading.Timer(timeout, clock.stop.set)
    watchdog.start()
    frames: list[RawFrame] = []
    try:
        for raw in source.frames():
            frames.append(raw)
            if each is not None:
                each(raw)
            if len(frames) >= count:
                break
    finally:
        watchdog.cancel()
        source.close()
    assert len(frames) == count, "the source stopped early"
    return frames


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()


def likeness(main: np.ndarray, lores: np.ndarray) -> tuple[float, float]:
    """(mean absolute difference, correlation) of `lores` with `main` scaled down to its size."""
    small = cv2.resize(main, (lores.shape[1], lores.shape[0]), interpolation=cv2.INTER_AREA)
    mad = float(np.abs(small.astype(np.int16) - lores.astype(np.int16)).mean())
    return mad, float(np.corrcoef(_gray(small), _gray(lores))[0, 1])


# --- sizes and decoding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("main", "lores_width", "expected"),
    [
        ((1280, 720), 640, (640, 360)),
        ((1920, 1080), 640, (640, 360)),
        ((960, 540), 400, (384, 216)),
        ((640, 480), 640, (640, 480)),
        ((1280, 720), 64, (64, 36)),
        ((100, 60), 640, (100, 60)),
    ],
)
def test_lores_keeps_the_aspect_ratio_aligned(
    main: tuple[int, int], lores_width: int, expected: tuple[int, int]
) -> None:
    w, h = lores_size(*main, lores_width)
    assert (w, h) == expected
    assert w % 2 == h % 2 == 0 and w <= main[0] and h <= main[1]


def test_a_stride_ignoring_decoder_fails_the_same_instant_check(fake: ModuleType) -> None:
    """The fake pads lores rows, so only a decoder that crops plane by plane gets the picture;
    the check the other tests use tells the two apart."""
    camera = fake.Picamera2(0)
    size = (384, 216)
    camera.configure(
        camera.create_video_configuration(
            main={"size": (960, 540), "format": "RGB888"}, lores={"size": size, "format": "YUV420"}
        )
    )
    camera.start()
    request = camera.capture_request(wait=5)
    try:
        main, yuv = request.make_array("main"), request.make_array("lores")
    finally:
        request.release()
        camera.close()
    assert yuv.shape[0] == size[1] * 3 // 2 and yuv.shape[1] > size[0]  # padded rows
    naive = cv2.cvtColor(np.ascontiguousarray(yuv[:, : size[0]]), cv2.COLOR_YUV2BGR_I420)
    mad, corr = likeness(main, naive)
    assert mad > 8 or corr < 0.99
    mad, corr = likeness(main, yuv420_to_bgr(yuv, *size))
    assert mad < 3 and corr > 0.995


# --- frames -------------------------------------------------------------------------------------


def test_main_and_lores_are_the_same_exposure_and_every_request_is_released(
    fake: ModuleType, video: Clip
) -> None:
    clock = RunClock()
    cfg = LiveConfig(width=960, height=540, lores_width=400)
    source = Picamera2Source(0, cfg, clock)
    assert (source.kind, source.label, source.live) == ("picamera2", "picamera2:0", True)
    assert (source.width, source.height) == (960, 540)
    frames = collect(source, 6, clock)
    for raw in frames:
        assert raw.pixels.shape == (540, 960, 3) and raw.pixels.dtype == np.uint8
        assert raw.lores is not None and raw.lores.shape == (216, 384, 3)
        assert raw.lores.dtype == np.uint8 and raw.pixels.flags.c_contiguous
    # Each lores matches its own main, and better than any other frame's (the faces move).
    for i, raw in enumerate(frames):
        assert raw.lores is not None
        mad, corr = likeness(raw.pixels, raw.lores)
        assert mad < 3 and corr > 0.995, (i, mad, corr)
        others = [likeness(f.pixels, raw.lores)[0] for j, f in enumerate(frames) if j != i]
        assert mad < min(others), (i, mad, others)
    camera = fake.FAKE_OPENED[-1]
    assert camera.requests_delivered == len(frames)
    assert camera.requests_released == camera.requests_delivered
    assert not camera.is_open
    # Pulled, not pushed: nothing was hooked into picamera2's camera thread.
    assert camera.pre_callback is None and camera.post_callback is None


def test_the_fake_starves_a_source_that_forgets_release(fake: ModuleType) -> None:
    camera = fake.Picamera2(0)
    config = camera.create_video_configuration(
        main={"size": (320, 180), "format": "RGB888"}, buffer_count=3
    )
    camera.configure(config)
    camera.start()
    held = [camera.capture_request(wait=5) for _ in range(3)]
    with pytest.raises(fake.TimeoutError):
        camera.capture_request(wait=0.5)
    held[0].release()
    with pytest.raises(RuntimeError, match="Stream 'main' is not defined"):  # as the real one
        held[0].make_array("main")
    with pytest.raises(RuntimeError, match="after release"):
        held[0].get_metadata()
    camera.capture_request(wait=5).release()  # one buffer back: frames flow again
    camera.close()


def test_pts_follow_the_sensor_timestamps(fake: ModuleType) -> None:
    clock = RunClock()
    source = Picamera2Source(0, LiveConfig(width=640, height=360, lores_width=256), clock)
    arrived: list[float] = []
    frames = collect(source, 10, clock, each=lambda raw: arrived.append(time.monotonic()))
    assert source._sensor_clock.basis == "monotonic"
    captured = [raw.captured for raw in frames]
    assert all(c is not None for c in captured)
    times = np.array(captured, dtype=np.float64)
    assert np.all(np.diff(times) > 0)
    assert np.all(times <= np.array(arrived)) and np.all(np.array(arrived) - times < 1.0)
    # Exposures come 1/30 s apart (or whole multiples, if one was skipped).
    steps = np.diff(times) * 30
    assert np.all(np.abs(steps - np.round(steps)) < 0.3) and np.all(np.round(steps) >= 1)
    assert source.skipped == int(np.sum(np.round(steps) - 1))
    pts = [raw.pts for raw in frames]
    assert pts == [clock.pts(c) for c in times] and pts == sorted(set(pts))
    assert all(raw.time_base == LIVE_TIME_BASE for raw in frames)
    assert [raw.index for raw in frames] == list(range(10))


def test_a_slow_loop_gets_the_newest_frame_and_the_camera_skips(fake: ModuleType) -> None:
    """A camera does not wait: while Veil is slow, exposures are skipped (and show as gaps in
    the capture times) rather than queued, so a frame is never older than a frame or two."""
    clock = RunClock()
    source = Picamera2Source(0, LiveConfig(width=640, height=360, lores_width=256), clock)
    ages: list[float] = []

    def slow(raw: RawFrame) -> None:
        assert raw.captured is not None
        ages.append(time.monotonic() - raw.captured)
        time.sleep(0.15)

    frames = collect(source, 6, clock, each=slow)
    camera = fake.FAKE_OPENED[-1]
    assert camera.frames_skipped >= 5 * 3
    gaps = np.diff([raw.captured for raw in frames])
    assert np.all(gaps > 0.1)
    # The source counts the exposures it never got, from the gaps between sensor timestamps.
    assert source.skipped == round(float(np.sum(gaps)) * 30) - (len(frames) - 1)
    assert 5 * 3 <= source.skipped <= camera.frames_skipped
    assert max(ages) < 0.12  # a backlog would have them grow by 0.15 s a frame


def test_sensor_clock_tells_monotonic_from_boottime_from_neither() -> None:
    mono = [10_000_000_000]
    boot = [55_000_000_000]  # boot time ran on while suspended: 45 s ahead
    clocks = SensorClock(monotonic_ns=lambda: mono[0], boottime_ns=lambda: boot[0])
    assert clocks.captured(9_990_000_000) == pytest.approx(9.99)
    assert clocks.basis == "monotonic"
    clocks = SensorClock(monotonic_ns=lambda: mono[0], boottime_ns=lambda: boot[0])
    assert clocks.captured(54_970_000_000) == pytest.approx(9.97)
    assert clocks.basis == "boottime"
    clocks = SensorClock(monotonic_ns=lambda: mono[0], boottime_ns=lambda: boot[0])
    assert clocks.captured(1_700_000_000_000_000_000) == pytest.approx(10.0)  # wall clock
    assert clocks.basis == "arrival"
    assert clocks.captured(None) == pytest.approx(10.0)


def test_a_timestamp_on_another_clock_falls_back_to_arrival(
    fake: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_CLOCK", "realtime")
    clock = RunClock()
    source = Picamera2Source(0, LiveConfig(width=640, height=360, lores_width=256), clock)
    before = time.monotonic()
    frames = collect(source, 3, clock)
    assert source._sensor_clock.basis == "arrival"
    assert all(before <= raw.captured <= time.monotonic() for raw in frames)


# --- failures -----------------------------------------------------------------------------------


def test_a_camera_error_mid_run_is_source_lost(
    fake: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_FAIL_AFTER", "4")
    clock = RunClock()
    source = Picamera2Source(0, LiveConfig(width=640, height=360, lores_width=256), clock)
    frames: list[RawFrame] = []
    with pytest.raises(SourceLost) as lost:
        for raw in source.frames():
            frames.append(raw)
    source.close()
    assert lost.value.reason == "read-error" and len(frames) == 4
    camera = fake.FAKE_OPENED[-1]
    assert camera.requests_released == camera.requests_delivered == 4 and not camera.is_open


def test_a_camera_that_stops_delivering_times_out(
    fake: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_FAIL_AFTER", "3")
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_FAIL", "stall")
    clock = RunClock()
    cfg = LiveConfig(width=640, height=360, lores_width=256)
    source = Picamera2Source(0, cfg, clock, read_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(SourceLost) as lost:
        for _ in source.frames():
            pass
    assert lost.value.reason == "timeout" and time.monotonic() - started < 5
    assert fake.FAKE_OPENED[-1].flushes == 1  # the timed-out capture was cancelled
    source.close()


def test_an_absent_camera_is_open_failed(fake: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_ABSENT", "1")
    with pytest.raises(SourceLost) as lost:
        Picamera2Source(0, LiveConfig(), RunClock())
    assert lost.value.reason == "open-failed"
    monkeypatch.delenv("VEIL_FAKE_PICAMERA2_ABSENT")
    with pytest.raises(SourceLost, match="picamera2:3"):
        Picamera2Source(3, LiveConfig(), RunClock())  # there is only camera 0


def test_a_missing_library_is_a_usage_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _forget_picamera2()
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails, real library or not
    with pytest.raises(UsageError) as error:
        Picamera2Source(0, LiveConfig(), RunClock())
    assert str(error.value) == INSTALL_HINT
    assert "sudo apt install python3-picamera2" in INSTALL_HINT
    assert "--system-site-packages" in INSTALL_HINT and "\n" not in INSTALL_HINT


def test_close_is_idempotent_and_never_raises(fake: ModuleType) -> None:
    source = Picamera2Source(0, LiveConfig(width=640, height=360, lores_width=256), RunClock())
    camera = fake.FAKE_OPENED[-1]

    def broken() -> None:
        raise RuntimeError("camera.release() failed")

    camera.stop = broken
    source.close()
    source.close()
    camera.close = broken
    source._closed = False
    source.close()
    del camera.stop, camera.close  # the real ones again, for the fixture to close it


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def source_lost(self, kind: str, reason: str) -> None:
        self.log.append(("lost", kind, reason))

    def source_restored(self, kind: str, offline_s: float, attempts: int) -> None:
        self.log.append(("restored", kind, attempts))


def test_a_failure_mid_run_is_followed_by_a_reconnect(
    fake: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_FAIL_AFTER", "5")
    clock, events = RunClock(), Events()
    cfg = LiveConfig(width=640, height=360, lores_width=256, reconnect_min_s=0.05)
    source = open_source(parse_spec("picamera2"), cfg, clock, OpenOptions(), events)
    frames = collect(source, 12, clock)
    assert events.log[:2] == [("lost", "picamera2", "read-error"), ("restored", "picamera2", 1)]
    assert [raw.index for raw in frames] == list(range(12))
    pts = [raw.pts for raw in frames]
    assert pts == sorted(set(pts))
    assert len(fake.FAKE_OPENED) >= 3  # 5 + 5 + 2 frames: two reopenings
    assert all(not camera.is_open for camera in fake.FAKE_OPENED)
    assert all(c.requests_released == c.requests_delivered for c in fake.FAKE_OPENED)


# --- the detector on lores ----------------------------------------------------------------------


def _iou(a: np.ndarray, b: tuple[float, float, float, float]) -> float:
    bx0, by0, bx1, by1 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(a[2], bx1) - max(a[0], bx0))
    h = max(0.0, min(a[3], by1) - max(a[1], by0))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + b[2] * b[3] - inter)


def test_the_detector_finds_the_faces_on_lores(fake: ModuleType, video: Clip) -> None:
    from edge.detect import build_detector

    clock = RunClock()
    frames = collect(Picamera2Source(0, LiveConfig(), clock), 3, clock)  # 1280x720, lores 640
    capture = cv2.VideoCapture(str(video.path))
    clip = []
    while (frame := capture.read())[0]:
        clip.append(frame[1])
    capture.release()
    detector = build_detector(Config().detector)
    for raw in frames:
        assert raw.lores is not None and raw.lores.shape == (360, 640, 3)
        # Which frame of the clip the camera saw, to know where its faces truly are.
        shown = int(np.argmin([np.abs(c.astype(np.int16) - raw.pixels).mean() for c in clip]))
        found = detector.detect(raw.lores)
        boxes = found.xyxy * np.float32(raw.width / raw.lores.shape[1])  # lores → main pixels
        for face in video.truth[shown]:
            assert max((_iou(box, face) for box in boxes), default=0.0) > 0.5, face
