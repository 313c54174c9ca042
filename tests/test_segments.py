"""Segmented recording (`veil run`): real H.264 encode and decode through PyAV, real files, a real
killed process and a real full disk (a small tmpfs)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from edge.config import RecordConfig, RedactConfig
from edge.detect.detections import Detections
from edge.digest import sha256_file
from edge.errors import OutputError
from edge.frames import RawFrame, RedactedFrame
from edge.redact import Redactor
from edge.sinks import fmp4, retention, segments
from edge.sinks.atomic import is_partial
from edge.sinks.base import Published
from edge.sinks.segments import SegmentSink, StorageFull

ROOT = Path(__file__).resolve().parents[1]
LIVE = Fraction(1, 90000)  # live sources' time base
REDACTOR = Redactor(RedactConfig())
RNG = np.random.default_rng(7)


@dataclass
class Events:
    """Every event the sink reports, in order."""

    log: list[tuple[str, Any]] = field(default_factory=list)

    def segment_closed(self, out: Published, *, recovered: bool) -> None:
        self.log.append(("closed", (out, recovered)))

    def segment_discarded(
        self, path: Path, frames: int, reason: str, error: BaseException | None
    ) -> None:
        self.log.append(("discarded", (path, frames, reason, error)))

    def segment_deleted(self, path: Path, sha256: str, reason: str) -> None:
        self.log.append(("deleted", (path, sha256, reason)))

    def storage_full(self, free_bytes: int) -> None:
        self.log.append(("full", free_bytes))

    def storage_resumed(self, free_bytes: int) -> None:
        self.log.append(("resumed", free_bytes))

    def of(self, kind: str) -> list[Any]:
        return [value for k, value in self.log if k == kind]

    def closed(self) -> list[Published]:
        return [out for out, _ in self.of("closed")]


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


# --- rotation, names, timestamps --------------------------------------------------------------


def test_segments_rotate_by_frame_time_and_keep_source_times(tmp_path: Path) -> None:
    events, sealed = Events(), []

    def seal(src: Path, dst: Path) -> None:
        sealed.append(src)
        shutil.copyfile(src, dst)

    folder = tmp_path / "rec"
    sink = SegmentSink(folder, config(), events, rate=Fraction(10), seal=seal)
    before = datetime.now(timezone.utc)
    written = []
    for k, pts in enumerate(at(10.0, 55)):  # 10.0 s .. 15.4 s
        sink.write(redacted(picture(k), pts))
        written.append(pts * LIVE)
        assert len(partials(folder)) == 1  # the open segment, under its hidden name
    last = sink.close()
    after = datetime.now(timezone.utc)

    closed = events.closed()
    assert last == closed[-1] and len(closed) == 3 == sink.segments
    assert [r for _, r in events.of("closed")] == [False, False, False]
    assert sink.bytes_written == sum(out.size for out in closed) and len(sealed) == 3
    # Cut at 12 s and 14 s of frame time, each segment starting where the last one stopped.
    assert [(out.frames, out.first_ts, out.last_ts) for out in closed] == [
        (20, 10.0, 11.9),
        (20, 12.0, 13.9),
        (15, 14.0, 15.4),
    ]
    decoded = [t for out in closed for t in times(out.path)]
    assert decoded == written  # the source's times, not shifted, not restarted per segment
    for out in closed:
        assert_published(out)
        assert not fmp4.scan(out.path).edit_list  # nothing that would shift the timeline
        seg = retention.parse_name(out.path.name)
        assert seg is not None and before - timedelta(seconds=1) <= seg.start <= after
    assert [p.name for p in sorted(folder.iterdir())] == sorted(o.path.name for o in closed)
    assert sink.close() is None  # nothing open any more


def test_names_are_utc_milliseconds_with_collision_suffixes(tmp_path: Path) -> None:
    at_ = datetime(2026, 12, 1, 20, 36, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    stem = retention.segment_stem(at_)
    assert stem == "20261201T193605.123Z"
    assert retention.unique_path(tmp_path, stem).name == f"{stem}.mp4"
    (tmp_path / f"{stem}.mp4").touch()
    (tmp_path / f"{stem}-1.mp4").touch()
    assert retention.unique_path(tmp_path, stem).name == f"{stem}-2.mp4"
    seg = retention.parse_name(f"{stem}-2.mp4")
    assert seg is not None and seg.n == 2
    assert seg.start == datetime(2026, 12, 1, 19, 36, 5, 123000, tzinfo=timezone.utc)
    for bad in ("20261301T193605.123Z.mp4", "20261201T193605Z.mp4", "x20261201T193605.123Z.mp4"):
        assert retention.parse_name(bad) is None


@pytest.mark.parametrize(
    ("stamps", "time_base", "expected"),
    [
        # Missing and backwards timestamps: one nominal step (1/30 s = 3000) past the last one.
        ([9000, 12000, None, 6000, 21000], LIVE, [9000, 12000, 15000, 18000, 21000]),
        # No time base at all: frames are 1/rate apart from 0.
        ([5, 5, None], None, [0, 1, 2]),
    ],
    ids=["repaired", "no-time-base"],
)
def test_timestamps_always_increase(
    tmp_path: Path, stamps: list[int | None], time_base: Fraction | None, expected: list[int]
) -> None:
    events = Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(30))
    for k, pts in enumerate(stamps):
        sink.write(redacted(picture(k), pts, time_base))
    out = sink.close()
    assert out is not None
    step = time_base or Fraction(1, 30)
    assert times(out.path) == [p * step for p in expected]


def test_a_new_size_starts_a_new_segment(tmp_path: Path) -> None:
    """A camera that reconnects at another size; an odd size is kept, in 4:4:4."""
    events = Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10))
    pts = iter(at(0.0))
    for k in range(4):
        sink.write(redacted(picture(k), next(pts)))
    for k in range(3):
        sink.write(redacted(picture(k, 161, 121), next(pts)))
    sink.close()
    first, second = events.closed()
    assert [(f.width, f.height) for f in assert_published(first)] == [(320, 240)] * 4
    frames = assert_published(second)
    assert [(f.width, f.height, f.format.name) for f in frames] == [(161, 121, "yuv444p")] * 3
    assert second.first_ts == pytest.approx(0.4)


def test_only_redacted_frames_are_accepted(tmp_path: Path) -> None:
    sink = SegmentSink(tmp_path / "rec", config(), Events(), rate=Fraction(10))
    for bad in (RawFrame(picture(0), 0, 0, LIVE), picture(0)):
        with pytest.raises(TypeError, match="RedactedFrame"):
            sink.write(bad)  # type: ignore[arg-type]
    assert not (tmp_path / "rec").exists()  # nothing was opened for them


def test_fragments_come_every_fragment_seconds(tmp_path: Path) -> None:
    events = Events()
    # superfast (the default) detects scene cuts, ultrafast does not
    cfg = config(segment_seconds=4.0, fragment_seconds=0.5, preset="superfast")
    sink = SegmentSink(tmp_path, cfg, events, rate=Fraction(10))
    for k, pts in enumerate(at(3.0, 40)):
        # Hard cuts between keyframes: scene-cut detection would add keyframes (and restart the
        # interval) there.
        sink.write(redacted(noise() if k % 7 == 3 else picture(k), pts))
    out = sink.close()
    assert out is not None
    layout = fmp4.scan(out.path)
    # 4 s of frames, a fragment every 0.5 s: 8 fragments (moof+mdat) of 5 frames each.
    assert [f.samples for f in layout.fragments] == [5] * 8
    frames = decode(out.path)
    keys = [k for k, f in enumerate(frames) if f.key_frame]
    assert keys == list(range(0, 40, 5))  # a keyframe opens each fragment, none in between
    assert [f.start for f in layout.fragments] == [frames[k].pts for k in keys]


def test_each_fragment_is_on_disk_before_the_next_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut loses at most the fragment being written: each one is fsynced as it lands."""
    synced: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    # superfast, the default, has a lookahead that zerolatency must switch off: no frame waits
    sink = SegmentSink(tmp_path, config(preset="superfast"), Events(), rate=Fraction(10))
    for k, pts in enumerate(at(0.0, 13)):
        sink.write(redacted(picture(k), pts))
    (partial,) = partials(tmp_path)
    layout = fmp4.scan(partial)
    # The header with the first frame, then each fragment as the keyframe after it arrived.
    assert synced == [(str(partial), layout.header_end)] + [
        (str(partial), f.end) for f in layout.fragments
    ]
    assert [f.samples for f in layout.fragments] == [5, 5]
    sink.abort()


# --- a killed run -----------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from fractions import Fraction
    from pathlib import Path
    import numpy as np
    from edge.config import RecordConfig, RedactConfig
    from edge.detect.detections import Detections
    from edge.frames import RawFrame
    from edge.redact import Redactor
    from edge.sinks.segments import SegmentSink

    class Quiet:
        def __getattr__(self, name):
            return lambda *args, **kw: None

    cfg = RecordConfig(segment_seconds=60, fragment_seconds=0.5, preset="ultrafast")
    sink = SegmentSink(Path(sys.argv[1]), cfg, Quiet(), rate=Fraction(10))
    redactor = Redactor(RedactConfig())
    for k in range(10_000):
        pixels = np.full((240, 320, 3), k % 256, np.uint8)
        frame = RawFrame(pixels, k, 5_400_000 + k * 9000, Fraction(1, 90000))
        sink.write(redactor.redact(frame, Detections.empty()))
        print(k, flush=True)
    """
)


def test_a_killed_run_leaves_a_partial_that_recover_publishes(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:  # frame 12 written: fragments 0-4 and 5-9 are on disk
            if line.strip() == "12":
                break
        else:
            pytest.fail(f"the child ended before frame 12 (exit {child.wait()})")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        assert child.wait() == -signal.SIGKILL
    (partial,) = partials(folder)
    assert len(fmp4.scan(partial).fragments) == 2

    events = Events()
    SegmentSink(folder, config(), events, rate=Fraction(10)).recover()
    ((out, recovered),) = events.of("closed")
    assert recovered and events.of("discarded") == []
    assert out.path.name == partial.name[1:].split(".veil-")[0] + ".mp4"  # the name it had
    assert (out.frames, out.first_ts, out.last_ts) == (10, 60.0, 60.9)
    assert_published(out)
    assert partials(folder) == [] and list(folder.iterdir()) == [out.path]


@pytest.fixture
def finished(tmp_path: Path) -> Published:
    """A closed 2 s segment: 4 fragments of 5 frames, from 30 s on."""
    events = Events()
    sink = SegmentSink(tmp_path / "src", config(), events, rate=Fraction(10))
    for k, pts in enumerate(at(30.0, 20)):
        sink.write(redacted(picture(k), pts))
    out = sink.close()
    assert out is not None and [f.samples for f in fmp4.scan(out.path).fragments] == [5] * 4
    return out


def _grow_last_mdat(data: bytes, layout: fmp4.Layout) -> bytes:
    """The last mdat's size field stretched over the `mfra` index that follows it."""
    mdat = next(
        pos
        for pos in range(layout.fragments[-1].offset, layout.fragments[-1].end)
        if data[pos + 4 : pos + 8] == b"mdat"
    )
    size = int.from_bytes(data[mdat : mdat + 4], "big") + len(data) - layout.fragments[-1].end
    assert len(data) > layout.fragments[-1].end  # the finished file ends with its mfra index
    return data[:mdat] + size.to_bytes(4, "big") + data[mdat + 4 :]


Damage = Callable[[bytes, fmp4.Layout], bytes]
DAMAGE: dict[str, tuple[Damage, int]] = {
    # cut anywhere inside fragment 3's media data: fragments 1 and 2 stay
    "mid-mdat": (lambda b, lay: b[: lay.fragments[2].end - 777], 10),
    "mid-moof": (lambda b, lay: b[: lay.fragments[1].offset + 40], 5),
    "between-fragments": (lambda b, lay: b[: lay.fragments[3].offset], 15),
    # boxes whole, media bytes never written (zeros after a power cut): that fragment goes
    "zeroed-mdat": (
        lambda b, lay: (
            b[: lay.fragments[3].offset + 300] + bytes(len(b) - lay.fragments[3].offset - 300)
        ),
        15,
    ),
    # an mdat longer than the samples its moof lists (it swallowed the file's index): not whole
    "mdat-mismatch": (lambda b, lay: _grow_last_mdat(b, lay), 15),
    "mid-moov": (lambda b, lay: b[: lay.header_end - 100], 0),
    "header-only": (lambda b, lay: b[: lay.header_end], 0),
    "empty": (lambda b, lay: b"", 0),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_recover_cuts_a_partial_back_to_whole_fragments(
    tmp_path: Path, finished: Published, damage: str
) -> None:
    cut, frames = DAMAGE[damage]
    folder = tmp_path / "rec"
    folder.mkdir()
    stem = finished.path.stem
    partial = folder / f".{stem}.veil-0123abcd.partial.mp4"
    partial.write_bytes(cut(finished.path.read_bytes(), fmp4.scan(finished.path)))
    (folder / f"{stem}.mp4").write_bytes(b"an earlier segment of that name")

    events = Events()
    SegmentSink(folder, config(), events, rate=Fraction(10)).recover()
    assert partials(folder) == []
    if frames == 0:
        assert events.log == [("discarded", (partial, 0, "partial", None))]
        assert [p.name for p in folder.iterdir()] == [f"{stem}.mp4"]
        return
    ((out, recovered),) = events.of("closed")
    assert recovered and out.path.name == f"{stem}-1.mp4"  # the name was taken
    assert (out.frames, out.first_ts) == (frames, 30.0)
    assert out.last_ts == pytest.approx(30.0 + (frames - 1) / 10)
    assert times(out.path) == times(finished.path)[:frames]
    assert_published(out)


def test_recover_removes_partials_that_are_not_segments(
    tmp_path: Path, finished: Published
) -> None:
    """A seal's scratch copy: a partial too, logged, and never published under a made-up name."""
    scratch = tmp_path / f".{finished.path.stem}.veil-0123abcd.partial.sealing.mp4"
    shutil.copyfile(finished.path, scratch)
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    events = Events()
    SegmentSink(tmp_path, config(), events, rate=Fraction(10)).recover()
    assert events.log == [("discarded", (scratch, 0, "partial", None))]
    assert not scratch.exists() and other.exists()


# --- retention --------------------------------------------------------------------------------


def old_segment(folder: Path, when: datetime, size: int = 1000) -> tuple[Path, str]:
    path = folder / f"{retention.segment_stem(when)}.mp4"
    path.write_bytes(RNG.integers(0, 256, size, dtype=np.uint8).tobytes())
    return path, sha256_file(path)[1]


def test_retention_by_age(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    old = [old_segment(tmp_path, now - timedelta(hours=h)) for h in (50, 30, 2.5)]
    young, _ = old_segment(tmp_path, now - timedelta(hours=1))
    untouched = [tmp_path / "20200101T000000.000Z.txt", tmp_path / "holiday.mp4"]
    for path in untouched:
        path.write_bytes(b"not a segment")
    events = Events()
    sink = SegmentSink(tmp_path, config(max_age_hours=2.0), events, rate=Fraction(10))
    sink.recover()
    assert events.of("deleted") == [(p, sha, "age") for p, sha in old]
    assert young.exists() and all(p.exists() for p in untouched)
    assert not any(p.exists() for p, _ in old)


def record(
    sink: SegmentSink, frames: int, start: float = 0.0, size: tuple[int, int] = (320, 240)
) -> None:
    for pts in at(start, frames):
        sink.write(redacted(noise(*size), pts))


def test_retention_by_disk_budget(tmp_path: Path) -> None:
    events = Events()
    sink = SegmentSink(tmp_path, config(max_bytes=1), events, rate=Fraction(10))
    record(sink, 20 * 4 + 3, size=(160, 120))  # four segments closed by rotation, a fifth open
    closed = events.closed()
    assert len(closed) == 4
    # Less than any segment: each close deleted the one before; the newest footage is kept.
    assert events.of("deleted") == [(o.path, o.sha256, "disk-budget") for o in closed[:-1]]
    assert sorted(p for p in tmp_path.iterdir() if not is_partial(p)) == [closed[-1].path]
    assert len(partials(tmp_path)) == 1  # the segment being written is never a candidate
    sink.close()


def test_disk_budget_deletes_oldest_first_until_under_it(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    made = [old_segment(tmp_path, start + timedelta(minutes=m), 400) for m in range(5)]
    deleted: list[tuple[Path, str, str]] = []
    retention.sweep(tmp_path, config(max_bytes=1000), lambda *e: deleted.append(e))
    # 2000 bytes against a 1000 byte budget: the three oldest go, oldest first.
    assert deleted == [(p, sha, "disk-budget") for p, sha in made[:3]]
    assert [s.path for s in retention.finished_segments(tmp_path)] == [p for p, _ in made[3:]]


def test_retention_keeps_the_newest_out_of_size_rules_but_not_age(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    (a, sha_a), (b, sha_b) = (old_segment(tmp_path, now - timedelta(hours=h)) for h in (3, 2))
    deleted: list[tuple[Path, str, str]] = []
    retention.sweep(tmp_path, config(max_bytes=1), lambda *e: deleted.append(e), keep=a)
    assert deleted == [(b, sha_b, "disk-budget")] and a.exists()
    retention.sweep(tmp_path, config(max_age_hours=1.0), lambda *e: deleted.append(e), keep=a)
    assert deleted[-1] == (a, sha_a, "age")


# --- a real small disk ------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """mount(size in MiB) -> a fresh tmpfs folder; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(mib: int) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            reason = f"cannot mount a tmpfs (needs root): {proc.stderr.strip() or proc.returncode}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in mounted:
            # Lazily if a failed test still holds a file open there: never leave a mount behind.
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """A file that leaves about `leave` bytes free on `disk`."""
    filler = disk / "filler.bin"
    filler.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


def test_retention_by_free_space(tmpfs: Callable[[int], Path]) -> None:
    disk = tmpfs(8)
    fill(disk, 3 << 20)
    events = Events()
    cfg = config(min_free_bytes=2 << 20)
    sink = SegmentSink(disk / "rec", cfg, events, rate=Fraction(10))
    record(sink, 20 * 8, size=(240, 180))  # about 0.7 MiB a segment
    sink.close()
    closed, deleted = events.closed(), events.of("deleted")
    by_path = {o.path: o.sha256 for o in closed}
    assert len(closed) == 8 and deleted, events.log
    assert all(reason == "free-space" and by_path[p] == sha for p, sha, reason in deleted)
    assert [p for p, _, _ in deleted] == [o.path for o in closed[: len(deleted)]]  # oldest first
    assert shutil.disk_usage(disk).free >= cfg.min_free_bytes
    for out in closed[len(deleted) :]:
        assert_published(out)


class Clock:
    """The sink's once-a-second clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_disk_pauses_and_resumes(
    tmpfs: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = tmpfs(24)
    filler = fill(disk, 2 << 20)
    clock = Clock()
    monkeypatch.setattr(segments, "CLOCK", clock)
    events = Events()
    sink = SegmentSink(disk / "rec", config(), events, rate=Fraction(10))
    pts = iter(at(100.0))
    written = 0
    with pytest.raises(StorageFull, match="disk .* is full"):
        while written < 200:
            sink.write(redacted(noise(), next(pts)))
            written += 1
    assert sink.full and 20 <= written < 60  # 2 MiB is 30-odd noise frames
    (free,) = events.of("full")
    assert free < 1 << 20
    assert partials(disk / "rec") == []
    published = events.closed()
    # The first segment closed normally; what was whole of the second was published too.
    assert [r for _, r in events.of("closed")] == [False, True][: len(published)]
    assert published[0].frames == 20 and sum(o.frames for o in published) <= written
    for out in published:
        assert_published(out)

    filler.unlink()  # room again, but the next look for it is not due yet: nothing is encoded
    clock.now += 0.5
    with pytest.raises(StorageFull):
        sink.write(redacted(noise(), next(pts)))
    assert partials(disk / "rec") == [] and events.of("resumed") == []

    clock.now += 0.5
    for _ in range(25):
        sink.write(redacted(noise(), next(pts)))
    assert not sink.full and len(events.of("resumed")) == 1
    assert events.of("resumed")[0] >= segments.RESUME_FREE_BYTES
    sink.close()
    resumed = [o for o in events.closed() if o not in published]
    assert [o.frames for o in resumed] == [20, 5]
    for out in resumed:
        assert_published(out)
    assert [o.path for o in events.closed()] == sorted(p for p in (disk / "rec").iterdir())


def test_a_disk_filled_by_recordings_frees_room_and_resumes(
    tmpfs: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """min_free_bytes below one segment: the disk fills mid-segment; the paused sink deletes the
    oldest segments until it may resume, rather than staying paused for good."""
    disk = tmpfs(20)
    clock = Clock()
    monkeypatch.setattr(segments, "CLOCK", clock)
    events = Events()
    cfg = config(segment_seconds=4.0, min_free_bytes=1 << 20)
    sink = SegmentSink(disk, cfg, events, rate=Fraction(10))
    pts = iter(at(0.0))
    for _ in range(600):
        clock.now += 0.1
        try:
            sink.write(redacted(noise(), next(pts)))
        except StorageFull:
            pass
        if events.of("resumed"):
            break
    assert events.of("full") and events.of("resumed"), events.log
    assert {reason for _, _, reason in events.of("deleted")} == {"free-space"}
    sink.close()
    kept = [o for o in events.closed() if o.path.exists()]
    assert kept and shutil.disk_usage(disk).free > 0
    for out in kept:
        assert_published(out)
    assert partials(disk) == []


# --- errors -----------------------------------------------------------------------------------


def test_abort_publishes_the_open_segment(tmp_path: Path) -> None:
    events = Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10))
    for k, pts in enumerate(at(1.0, 7)):
        sink.write(redacted(picture(k), pts))
    sink.abort()
    ((out, recovered),) = events.of("closed")
    assert not recovered and out.frames == 7  # all of it, the unfinished fragment too
    assert_published(out)
    with pytest.raises(OutputError, match="stopped"):
        sink.write(redacted(picture(0), 0))
    sink.abort()  # again: nothing to do, no error


def test_a_failing_seal_is_one_line_and_abort_never_raises(tmp_path: Path) -> None:
    def seal(src: Path, dst: Path) -> None:
        raise RuntimeError("signing service down")

    events = Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10), seal=seal)
    pts = iter(at(0.0))
    with pytest.raises(OutputError) as caught:
        for k in range(21):
            sink.write(redacted(picture(k), next(pts)))
    assert "\n" not in str(caught.value) and "signing service down" in str(caught.value)
    ((path, frames, reason, error),) = events.of("discarded")
    assert (frames, reason, str(error)) == (20, "error", "signing service down")
    sink2 = SegmentSink(tmp_path / "b", config(), events, rate=Fraction(10), seal=seal)
    sink2.write(redacted(picture(0), 0))
    sink2.abort()
    assert events.of("discarded")[-1][2] == "interrupted"
    assert partials(tmp_path) == [] and partials(tmp_path / "b") == []
