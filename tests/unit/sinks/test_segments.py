"""Segmented recording (`veil run`): real H.264 encode and decode through PyAV, real files, a real
killed process, and the work the sink does off its writing thread (fsyncs, finishing segments).
Retention and a full disk: test_segment_storage.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import ROOT
from edge.errors import OutputError
from edge.frames import RawFrame
from edge.sinks import fmp4, retention
from edge.sinks.base import Published
from edge.sinks.segments import SegmentSink
from helpers.segments import (
    LIVE,
    Events,
    assert_published,
    at,
    config,
    decode,
    noise,
    partials,
    picture,
    redacted,
    settle,
    times,
)

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
        # The open segment under its hidden name, a closed one until the worker renamed it, and
        # that one's scratch copy while the seal writes it.
        assert 1 <= len(partials(folder)) <= 3
        settle(sink)
        assert len(partials(folder)) == 1
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


def test_each_fragment_is_fsynced_in_the_background_as_it_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut loses at most the fragment being written and the one before it (whose fsync
    may still run): each is fsynced as it lands, on the sync thread, never the writing one."""
    synced: list[tuple[str, int, str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        where = threading.current_thread().name
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size, where))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    # superfast, the default, has a lookahead that zerolatency must switch off: no frame waits
    sink = SegmentSink(tmp_path, config(preset="superfast"), Events(), rate=Fraction(10))
    for k, pts in enumerate(at(0.0, 13)):
        sink.write(redacted(picture(k), pts))
        settle(sink)  # one sync per fragment then: none is folded into the next one's
    (partial,) = partials(tmp_path)
    layout = fmp4.scan(partial)
    # The header with the first frame, then each fragment as the keyframe after it arrived.
    assert synced == [(str(partial), layout.header_end, "veil-fsync")] + [
        (str(partial), f.end, "veil-fsync") for f in layout.fragments
    ]
    assert [f.samples for f in layout.fragments] == [5, 5]
    sink.abort()


# --- a killed run -----------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    import time
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
        if k == 12:  # killed here, not a few frames later: a fast writer would reach frame 15
            time.sleep(60)
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


# --- errors -----------------------------------------------------------------------------------


def test_a_failing_seal_is_one_line_and_abort_never_raises(tmp_path: Path) -> None:
    def seal(src: Path, dst: Path) -> None:
        raise RuntimeError("signing service down")

    events = Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10), seal=seal)
    pts = iter(at(0.0))
    for k in range(21):  # the 21st opens segment two: segment one is sealed in the background
        sink.write(redacted(picture(k), next(pts)))
    settle(sink)
    with pytest.raises(OutputError) as caught:  # raised by the next write, as if it failed there
        sink.write(redacted(picture(21), next(pts)))
    assert "\n" not in str(caught.value) and "signing service down" in str(caught.value)
    # Segment one, then the open segment two (salvaged: its seal fails too).
    assert [(f, r, str(e)) for _, f, r, e in events.of("discarded")] == [
        (20, "error", "signing service down"),
        (1, "error", "signing service down"),
    ]
    sink3 = SegmentSink(tmp_path / "c", config(), Events(), rate=Fraction(10), seal=seal)
    sink3.write(redacted(picture(0), 0))
    with pytest.raises(OutputError, match="signing service down"):  # close() raises it too
        sink3.close()
    sink2 = SegmentSink(tmp_path / "b", config(), events, rate=Fraction(10), seal=seal)
    sink2.write(redacted(picture(0), 0))
    sink2.abort()
    assert events.of("discarded")[-1][2] == "interrupted"
    assert partials(tmp_path) == [] and partials(tmp_path / "b") == []


# --- finishing segments in the background ------------------------------------------------------


def test_events_keep_their_order_when_finishing_is_slow(tmp_path: Path) -> None:
    """Each close, then the deletions it caused, segment after segment, with finishes slower
    than the frames (they queue up, and the writer waits for them at FINISH_BACKLOG)."""

    def seal(src: Path, dst: Path) -> None:
        time.sleep(0.15)
        shutil.copyfile(src, dst)

    events = Events()
    sink = SegmentSink(tmp_path, config(max_bytes=1), events, rate=Fraction(10), seal=seal)
    for k, pts in enumerate(at(0.0, 20 * 4 + 3)):
        sink.write(redacted(picture(k), pts))
    sink.close()
    closed = events.closed()
    assert [(o.frames, r) for o, r in events.of("closed")] == [(20, False)] * 4 + [(3, False)]
    assert [o.path for o in closed] == sorted(o.path for o in closed)  # named in order, too
    expected = [("closed", closed[0].path)]
    for older, out in zip(closed, closed[1:], strict=False):
        expected += [("closed", out.path), ("deleted", older.path)]
    assert [(k, v[0].path if k == "closed" else v[0]) for k, v in events.log] == expected
    assert events.of("deleted") == [(o.path, o.sha256, "disk-budget") for o in closed[:-1]]
