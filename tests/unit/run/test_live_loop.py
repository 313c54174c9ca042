"""The live loop's promise: a frame leaves only once the detector has vouched for it in time.

A recorded clip of real moving faces is played as a camera (`file:` with realtime pacing), so
the source never waits. Detectors made slow, hung or failing by test doubles (around the real
BlazeFace) must never let a clear frame reach the sink, and every frame that was not recorded
as redacted is counted by cause. The sink here keeps the frames in memory so that each one can
be checked against its source frame; the real segment sink is tested in test_segments.py and
through `veil run` in test_run_cli.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import Clip
from edge.capture.file_live import FileLiveSource
from edge.capture.live import RunClock
from edge.config import Config, RedactConfig
from edge.detect import Detections, FaceDetector, build_detector
from edge.detect.passes import Pass, Region
from edge.detect.sweep import grid_regions
from edge.frames import Pixels, RedactedFrame
from edge.redact import Redactor
from edge.run import Realtime, RunReport, run
from edge.run.schedule import Schedule
from edge.sample import Box
from edge.sinks.base import Published, require_redacted

FILL = np.array(RedactConfig().color, np.uint8)


class KeepingSink:
    """Keeps every redacted frame (a copy of its pixels) to compare with the source."""

    def __init__(self) -> None:
        self.frames: list[RedactedFrame] = []

    def write(self, frame: RedactedFrame) -> None:
        self.frames.append(require_redacted(frame))

    def close(self) -> Published:
        return Published(Path("memory"), 0, "0" * 64, len(self.frames), None, None)

    def abort(self) -> None:
        pass


class SlowSink(KeepingSink):
    """A sink that takes `seconds` to write each frame (a slow disk, a slow encoder)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def write(self, frame: RedactedFrame) -> None:
        time.sleep(self.seconds)
        super().write(frame)


class Slow:
    """The real detector, made slower: `delay(i)` seconds before the i-th call."""

    def __init__(self, inner: FaceDetector, delay: float | dict[int, float]) -> None:
        self.name = f"slow {inner.name}"
        self._inner = inner
        self._delay = delay
        self.calls = 0
        self.searched: list[Pixels] = []  # the pictures it searched (kept: ids stay unique)
        self._lock = threading.Lock()

    def detect(self, image: Pixels) -> Detections:
        with self._lock:
            call = self.calls
            self.calls += 1
        pause = self._delay if isinstance(self._delay, float) else self._delay.get(call, 0.0)
        time.sleep(pause)
        self.searched.append(image)
        return self._inner.detect(image)


class Failing:
    name = "failing"

    def detect(self, image: Pixels) -> Detections:
        raise RuntimeError("inference failed")


@pytest.fixture(scope="module")
def blazeface() -> FaceDetector:
    cfg = Config.model_validate({"detector": {"backend": "blazeface"}})
    return build_detector(cfg.detector)


def live_run(
    clip: Clip,
    detector: FaceDetector,
    realtime: Realtime,
    *,
    seconds: float | None = None,
    sink: KeepingSink | None = None,
) -> tuple[KeepingSink, RunReport]:
    clock = RunClock()
    source = FileLiveSource(clip.path, clock, realtime=True, loop=False)
    sink = sink or KeepingSink()
    if seconds is not None:
        threading.Timer(seconds, clock.stop.set).start()
    report = run(
        source, detector, Redactor(RedactConfig()), sink, Config().track, realtime=realtime
    )
    return sink, report


def face_hidden(frame: RedactedFrame, box: Box) -> bool:
    """The face box's centre half is the fill colour (a redacted or obscured face)."""
    x, y, w, h = box
    x0, y0 = int(x + w / 4), int(y + h / 4)
    x1, y1 = max(x0 + 1, int(x + 3 * w / 4)), max(y0 + 1, int(y + 3 * h / 4))
    patch = frame.pixels[y0:y1, x0:x1].reshape(-1, 3)
    if patch.size == 0:
        return True
    return bool((np.abs(patch.astype(int) - FILL).max(axis=1) <= 2).mean() > 0.9)


def accounted(report: RunReport) -> None:
    """Every source frame is recorded or dropped; every loss and obscured frame has a cause."""
    assert report.frames_in == report.frames_out + report.dropped
    assert sum(report.failures.values()) == report.dropped + report.obscured


def test_a_detector_that_keeps_up_leaves_no_face_clear(sample_clip: Clip, blazeface) -> None:
    sink, report = live_run(sample_clip, blazeface, Realtime(max_latency_ms=400.0))
    accounted(report)
    assert report.frames_in == len(sample_clip.truth)
    indices = [f.index for f in sink.frames]
    assert indices == sorted(set(indices)), "frames out of order or repeated"
    # Faces of 30 px and more in this clip: every recorded frame has them covered.
    large = [
        (f, b) for f in sink.frames for b in sample_clip.truth[f.index] if min(b[2], b[3]) >= 60
    ]
    assert large and all(face_hidden(f, b) for f, b in large)
    assert report.latency.count == report.frames_out
    assert report.latency.percentile(99) < 400.0
    # Every stage timed on every frame that went through it.
    stages = report.stages()
    assert list(stages) == ["decode", "detect", "track", "redact", "encode"]
    assert stages["decode"].count == report.frames_in
    assert stages["encode"].count == report.frames_out
    assert all(t.count >= report.frames_out > 0 and t.mean() > 0 for t in stages.values())
    # Decode is the source's work, not its wait for the next frame (1/30 s when played live).
    assert report.decode.percentile(50) < 25.0


def test_a_slow_detector_drops_frames_at_capture_and_none_leaves_clear(
    sample_clip: Clip, blazeface
) -> None:
    slow = Slow(blazeface, 0.08)  # 12 frames/s at best from a 30 frames/s camera
    sink, report = live_run(sample_clip, slow, Realtime(max_latency_ms=150.0, queue=1))
    accounted(report)
    assert report.failures["overload"] > 0.3 * report.frames_in
    assert report.frames_out > 0
    searched = {id(image) for image in slow.searched}
    for frame in sink.frames:  # each recorded frame was searched itself (no passes to spread)
        assert frame.obscured or id(frame.pixels) in searched  # redacted in place
    assert slow.calls >= report.frames_out - report.obscured
    # Latency does not grow with the backlog: frames waited for one search at most.
    assert report.latency.percentile(99) < 150.0 + 100.0


def test_a_hung_detector_makes_frames_late_not_clear(sample_clip: Clip, blazeface) -> None:
    hang = Slow(blazeface, {10: 0.6})  # one search takes 0.6 s: its frame is far past 150 ms
    sink, report = live_run(sample_clip, hang, Realtime(max_latency_ms=150.0, late="obscure"))
    accounted(report)
    assert report.failures["late"] >= 1 and report.failures["overload"] >= 5
    late = [f for f in sink.frames if f.obscured]
    assert len(late) == report.obscured >= 1
    assert all((f.pixels == FILL).all() for f in late)


def test_late_frames_can_be_dropped_instead(sample_clip: Clip, blazeface) -> None:
    hang = Slow(blazeface, {10: 0.6})
    sink, report = live_run(sample_clip, hang, Realtime(max_latency_ms=150.0, late="drop"))
    accounted(report)
    assert report.obscured == 0 and report.failures["late"] >= 1
    assert not any(f.obscured for f in sink.frames)


def test_a_frame_bound_to_reach_a_slow_sink_late_is_dropped_before_it(
    sample_clip: Clip, blazeface
) -> None:
    # The sink takes 120 ms a frame, four times the camera's frame time, so frames queue before
    # it: each that would reach it past its 300 ms deadline is dropped there, as late, rather
    # than written late (the queue alone would hold a frame 4 x 120 ms).
    sink, report = live_run(
        sample_clip, blazeface, Realtime(max_latency_ms=300.0), sink=SlowSink(0.12)
    )
    accounted(report)
    assert report.failures["late"] > 0 and report.frames_out > 0
    assert len(sink.frames) == report.frames_out
    assert max(report.latency.values) < 300.0 + 60.0


def test_a_failing_detector_obscures_every_frame(sample_clip: Clip) -> None:
    sink, report = live_run(sample_clip, Failing(), Realtime(max_latency_ms=300.0))
    accounted(report)
    assert sink.frames and all(f.obscured and (f.pixels == FILL).all() for f in sink.frames)
    assert report.failures["detector: RuntimeError"] == report.obscured == len(sink.frames)


class Strips:
    """The real detector as a `Searching` one: three overlapping vertical strips, each pass
    keeping only the faces that lie whole in its strip. Logs each search: the picture and the
    strips searched on it."""

    name = "strips"

    def __init__(self, inner: FaceDetector) -> None:
        self._inner = inner
        self.log: list[tuple[Pixels, tuple[Region, ...]]] = []

    def passes(self, height: int, width: int) -> list[Pass]:
        # A face of up to 2 x 100 px lies whole in one strip (`grid_regions`).
        return [
            Pass("fine", r, (height, width), (0.0, 200.0), r)
            for r in grid_regions(height, width, 1, 3, 100)
        ]

    def search(self, image: Pixels, passes: Sequence[Pass], cycle: int | None) -> Detections:
        self.log.append((image, tuple(p.region for p in passes)))
        found = self._inner.detect(image)
        keep = [i for i, box in enumerate(found.xyxy) if any(p.answers_for(box) for p in passes)]
        return Detections(found.xyxy[keep], found.scores[keep])

    def detect(self, image: Pixels) -> Detections:
        return self.search(image, self.passes(*image.shape[:2]), None)


class VouchingSink(KeepingSink):
    """Checks, as each frame arrives, that every strip was searched on it or a later frame."""

    def __init__(self, strips: Strips) -> None:
        super().__init__()
        self.strips = strips
        self.early: list[int] = []

    def write(self, frame: RedactedFrame) -> None:
        log = list(self.strips.log)
        at = next(i for i, (image, _) in enumerate(log) if image is frame.pixels)
        searched = {r for _, regions in log[at:] for r in regions}
        if searched != {r for _, regions in log for r in regions}:
            self.early.append(frame.index)
        super().write(frame)


def test_a_sweep_searches_one_strip_a_frame_and_each_frame_leaves_once_all_were_searched(
    sample_clip: Clip, blazeface: FaceDetector
) -> None:
    strips = Strips(blazeface)
    clock = RunClock()
    source = FileLiveSource(sample_clip.path, clock, realtime=True, loop=False)
    sink = VouchingSink(strips)
    # A budget and a queue (the whole clip) no load on a test machine exhausts: this is about
    # vouching, not speed.
    rt = Realtime(max_latency_ms=3000.0, queue=len(sample_clip.truth))
    report = run(
        source,
        strips,
        Redactor(RedactConfig()),
        sink,
        Config().track,
        realtime=rt,
        schedule=Schedule(strips, sweep=3),
    )
    accounted(report)
    assert report.dropped == 0 and report.obscured == 0
    n = report.frames_in
    # One strip a frame, in turn; the end of the stream searches the newest frame in full.
    every = tuple(grid_regions(720, 1280, 1, 3, 100))
    assert [regions for _, regions in strips.log[:n]] == [(every[i % 3],) for i in range(n)]
    assert [regions for _, regions in strips.log[n:]] in ([], [every])
    assert sink.early == []
    large = [
        (f, b) for f in sink.frames for b in sample_clip.truth[f.index] if min(b[2], b[3]) >= 60
    ]
    assert large and all(face_hidden(f, b) for f, b in large)


def test_file_source_keeps_its_own_rate_and_times(sample_clip: Clip) -> None:
    clock = RunClock()
    source = FileLiveSource(sample_clip.path, clock, realtime=True, loop=True)
    start = time.monotonic()
    frames = []
    for raw in source.frames():
        frames.append(raw)
        if len(frames) == 75:  # 2.5 s of a 2 s clip at 30 frames/s: one replay
            break
    source.close()
    elapsed = time.monotonic() - start
    assert 2.3 < elapsed < 3.5
    times = [float(f.pts * f.time_base) for f in frames]
    steps = np.diff(times)
    assert (steps > 0).all() and np.allclose(steps, 1 / 30, atol=1e-3)
    assert [f.index for f in frames] == list(range(75))


def test_file_source_without_realtime_is_not_live(sample_clip: Clip, blazeface) -> None:
    clock = RunClock()
    source = FileLiveSource(sample_clip.path, clock, realtime=False, loop=False)
    assert not source.live
    sink = KeepingSink()
    report = run(source, blazeface, Redactor(RedactConfig()), sink, Config().track)
    assert report.frames_out == len(sample_clip.truth) and report.dropped == 0


def _timeless_clip(path: Path, frames: int) -> Path:
    """A 30 frames/s Matroska clip whose every timestamp is 0 (as some recorders write)."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"bframes": "0"}
        packets = []
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 8, np.uint8), "bgr24")
            frame.pts = i
            packets += stream.encode(frame)
        packets += stream.encode(None)
        for packet in packets:
            packet.pts = packet.dts = 0
            out.mux(packet)
    with av.open(str(path)) as probe:
        assert {f.pts for f in probe.decode(video=0)} == {0}
    return path


def test_file_source_paces_a_clip_without_timestamps_at_its_rate(tmp_path: Path) -> None:
    """Issue 21: with every pts 0, `--realtime` released all frames at once."""
    clip = _timeless_clip(tmp_path / "timeless.mkv", 15)
    source = FileLiveSource(clip, RunClock(), realtime=True, loop=True)
    start = time.monotonic()
    frames = []
    for raw in source.frames():
        frames.append(raw)
        if len(frames) == 30:  # two replays
            break
    source.close()
    assert time.monotonic() - start >= 29 / 30 * 0.95
    assert [f.index for f in frames] == list(range(30))
