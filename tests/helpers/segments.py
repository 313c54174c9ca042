"""What test_segments.py and test_segment_storage.py use: an event recorder, frames, configs,
checks of what was published (real files, decoded through PyAV), and a few things on disk."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from edge.config import RecordConfig, RedactConfig
from edge.detect.detections import Detections
from edge.digest import sha256_file
from edge.frames import RawFrame, RedactedFrame
from edge.names import is_partial
from edge.redact import Redactor
from edge.sinks import retention
from edge.sinks.base import Published
from edge.sinks.segments import SegmentSink

LIVE = Fraction(1, 90000)  # live sources' time base
REDACTOR = Redactor(RedactConfig())
RNG = np.random.default_rng(7)


@dataclass
class Events:
    """Every event the sink reports, in order; fails the test if two ever overlap (they come
    from the sink's background worker as well as from the caller's thread)."""

    log: list[tuple[str, Any]] = field(default_factory=list)
    _busy: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, kind: str, value: Any) -> None:
        assert self._busy.acquire(blocking=False), f"{kind} reported during another event"
        try:
            self.log.append((kind, value))
        finally:
            self._busy.release()

    def segment_closed(self, out: Published, *, recovered: bool) -> None:
        self._add("closed", (out, recovered))

    def segment_discarded(
        self, path: Path, frames: int, reason: str, error: BaseException | None
    ) -> None:
        self._add("discarded", (path, frames, reason, error))

    def segment_deleted(self, path: Path, sha256: str, reason: str) -> None:
        self._add("deleted", (path, sha256, reason))

    def storage_full(self, free_bytes: int) -> None:
        self._add("full", free_bytes)

    def storage_resumed(self, free_bytes: int) -> None:
        self._add("resumed", free_bytes)

    def of(self, kind: str) -> list[Any]:
        return [value for k, value in self.log if k == kind]

    def closed(self) -> list[Published]:
        return [out for out, _ in self.of("closed")]


class HeldSeal:
    """A seal (a plain copy) whose first call waits until `go` is set: the first segment's finish
    held up in the background, as by a slow disk or signing service, as long as a test needs."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.calls = 0

    def __call__(self, src: Path, dst: Path) -> None:
        self.calls += 1
        if self.calls == 1:
            assert self.go.wait(10.0), "the held seal was never let go"
        shutil.copyfile(src, dst)


def config(**kw: Any) -> RecordConfig:
    base: dict[str, Any] = dict(
        segment_seconds=2.0, fragment_seconds=0.5, preset="ultrafast", min_free_bytes=0
    )
    return RecordConfig(**(base | kw))


def picture(k: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A cheap picture that changes every frame."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = np.arange(width, dtype=np.uint8)[None, :] + k * 3
    image[:, :, 1] = 90
    image[:, :, 2] = np.arange(height, dtype=np.uint8)[:, None]
    return image


def noise(width: int = 320, height: int = 240) -> np.ndarray:
    """Incompressible: about 60 kB a frame at 320x240, so a small disk fills fast."""
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def redacted(
    pixels: np.ndarray, pts: int | None, time_base: Fraction | None = LIVE, index: int = 0
) -> RedactedFrame:
    return REDACTOR.redact(RawFrame(pixels, index, pts, time_base), Detections.empty())


def at(seconds: float, n: int = 1000, rate: int = 10) -> list[int]:
    """pts (1/90000) of `n` frames every 1/rate s from `seconds` on."""
    return [round((seconds + k / rate) * 90000) for k in range(n)]


def record(
    sink: SegmentSink, frames: int, start: float = 0.0, size: tuple[int, int] = (320, 240)
) -> None:
    for pts in at(start, frames):
        sink.write(redacted(noise(*size), pts))


def settle(sink: SegmentSink) -> None:
    """Wait for the sink's background work (fsyncs, finishing closed segments): what a test
    reads before close() otherwise depends on how fast that thread was."""
    assert sink._background.wait(10.0), "the sink's background work did not finish in 10 s"


def old_segment(folder: Path, when: datetime, size: int = 1000) -> tuple[Path, str]:
    path = folder / f"{retention.segment_stem(when)}.mp4"
    path.write_bytes(RNG.integers(0, 256, size, dtype=np.uint8).tobytes())
    return path, sha256_file(path)[1]


def fill(disk: Path, leave: int) -> Path:
    """A file that leaves about `leave` bytes free on `disk`."""
    filler = disk / "filler.bin"
    filler.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


class Clock:
    """The sink's once-a-second clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def decode(path: Path) -> list[Any]:
    """Every frame of the file; fails on a damaged packet."""
    with av.open(str(path)) as c:
        frames = []
        for packet in c.demux(video=0):
            assert not packet.is_corrupt, path
            frames.extend(packet.decode())
        return frames


def times(path: Path) -> list[Fraction]:
    return [f.pts * Fraction(f.time_base) for f in decode(path)]


def assert_published(out: Published) -> list[Any]:
    """The file is there, is what was published, and decodes fully."""
    assert out.path.is_file()
    assert sha256_file(out.path) == (out.size, out.sha256)
    frames = decode(out.path)
    assert len(frames) == out.frames > 0
    assert out.first_ts == pytest.approx(float(frames[0].time), abs=1e-6)
    assert out.last_ts == pytest.approx(float(frames[-1].time), abs=1e-6)
    return frames


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if is_partial(p)] if folder.exists() else []
