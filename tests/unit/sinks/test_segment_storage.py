"""Segmented recording and its disk: retention by age, size and free space; a real full disk (a
small tmpfs), also one that fills while a closed segment is finished in the background; a slow,
failing or hung disk, which the writing thread must not wait for."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import ANY, Mock

import pytest

from edge.errors import OutputError
from edge.names import is_partial
from edge.sinks import encoder, retention, segments
from edge.sinks.segments import SegmentSink, StorageFull
from helpers.segments import (
    Clock,
    Events,
    HeldSeal,
    assert_published,
    at,
    config,
    fill,
    noise,
    old_segment,
    partials,
    picture,
    record,
    redacted,
    settle,
)

# --- retention --------------------------------------------------------------------------------


def test_names_are_utc_milliseconds_with_collision_suffixes(tmp_path: Path) -> None:
    at_ = datetime(2026, 12, 1, 20, 36, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    stem = retention.segment_stem(at_)
    assert stem == "20261201T193605.123Z"
    assert retention.unique_path(tmp_path, stem).name == f"{stem}.mp4"
    (tmp_path / f"{stem}.mp4").touch()
    (tmp_path / f"{stem}-1.mp4").touch()
    assert retention.unique_path(tmp_path, stem).name == f"{stem}-2.mp4"
    # A name promised to a segment still being finished (not in the folder yet) is taken too.
    assert (
        retention.unique_path(tmp_path, stem, {tmp_path / f"{stem}-2.mp4"}).name == f"{stem}-3.mp4"
    )
    seg = retention.parse_name(f"{stem}-2.mp4")
    assert seg is not None and seg.n == 2
    assert seg.start == datetime(2026, 12, 1, 19, 36, 5, 123000, tzinfo=timezone.utc)
    for bad in ("20261301T193605.123Z.mp4", "20261201T193605Z.mp4", "x20261201T193605.123Z.mp4"):
        assert retention.parse_name(bad) is None


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


def test_retention_by_disk_budget(tmp_path: Path) -> None:
    events = Events()
    sink = SegmentSink(tmp_path, config(max_bytes=1), events, rate=Fraction(10))
    record(sink, 20 * 4 + 3, size=(160, 120))  # four segments closed by rotation, a fifth open
    settle(sink)  # the last of those four is finished (and swept) in the background
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


def test_a_disk_that_fills_while_a_segment_is_finished_pauses_the_next_write(
    tmpfs: Callable[[int], Path],
) -> None:
    """The seal's copy of a closed segment does not fit: its finish, in the background, hits
    ENOSPC; the next write() pauses recording as if it had hit it itself."""
    disk = tmpfs(16)
    seal, events = HeldSeal(), Events()  # held: the copy must not fill the disk under write()
    sink = SegmentSink(disk / "rec", config(), events, rate=Fraction(10), seal=seal)
    pts = iter(at(0.0))
    for _ in range(20):
        sink.write(redacted(noise(), next(pts)))
    (partial,) = partials(disk / "rec")
    # Room for the last fragment (a third of what is there), not for a copy of it all.
    fill(disk, partial.stat().st_size // 2)
    sink.write(redacted(picture(0), next(pts)))  # segment two opens; one is sealed meanwhile
    seal.go.set()
    settle(sink)
    assert events.of("full") == []
    with pytest.raises(StorageFull):
        sink.write(redacted(picture(1), next(pts)))
    # Segment one lost (its copy failed, and took the partial with it); then the open segment
    # salvaged: closing its muxer writes its one frame as a whole fragment, which now fits.
    assert sink.full and [kind for kind, _ in events.log] == ["discarded", "closed", "full"]
    ((one, frames, reason, error),) = events.of("discarded")
    assert (one, frames, reason) == (partial, 20, "error") and "No space left" in str(error)
    assert [(o.frames, r) for o, r in events.of("closed")] == [(1, True)]
    assert partials(disk / "rec") == []


# --- a slow or failing disk -------------------------------------------------------------------


def test_write_never_waits_for_a_slow_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    callers: list[str] = []

    def slow_fsync(fd: int) -> None:  # an SD card behind a big write-back (and not even that)
        callers.append(threading.current_thread().name)
        time.sleep(0.5)

    monkeypatch.setattr(encoder.os, "fsync", slow_fsync)
    events = Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10))
    took = []
    for k, pts in enumerate(at(0.0, 30)):  # a fragment every 5 frames, segment two at frame 20
        start = time.monotonic()
        sink.write(redacted(picture(k), pts))
        took.append(time.monotonic() - start)
    assert max(took) < 0.2, took
    assert callers and threading.current_thread().name not in callers  # all in the background
    start = time.monotonic()
    sink.close()
    assert time.monotonic() - start >= 0.5  # close() waited for them
    assert [o.frames for o in events.closed()] == [20, 10]


def test_fsyncs_that_cannot_keep_up_are_folded_into_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, go = threading.Event(), threading.Event()
    sizes: list[int] = []

    def held_fsync(fd: int) -> None:
        sizes.append(os.fstat(fd).st_size)
        running.set()
        assert go.wait(10.0)

    monkeypatch.setattr(encoder.os, "fsync", held_fsync)
    syncer = encoder.Syncer()
    with (tmp_path / "f").open("wb") as f:
        for _ in range(5):
            f.write(b"x" * 100)
            f.flush()
            syncer.request(f, f.fileno())
            assert running.wait(5.0) and syncer.wait(0.0) is False
    go.set()  # the file is closed by now: the syncs run on descriptors of their own
    assert syncer.wait(5.0)
    assert sizes == [100, 500] and syncer.take_errors() == []  # the held one, then the rest


def test_a_failed_fsync_is_raised_by_the_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(encoder.os, "fsync", failing_fsync)
    events = Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10))
    sink.write(redacted(picture(0), 0))  # the header is written: its fsync fails, later
    settle(sink)
    with pytest.raises(OutputError, match="Input/output error"):
        sink.write(redacted(picture(1), 9000))
    assert [(frames, reason) for _, frames, reason, _ in events.of("discarded")] == [(1, "error")]
    assert not sink.full and partials(tmp_path) == []


@pytest.mark.parametrize("end", ["close", "abort", "error"])
def test_what_ends_or_fails_a_recording_waits_for_the_finish_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    seal, events = HeldSeal(), Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10), seal=seal)
    for k, pts in enumerate(at(0.0, 25)):  # segment one closes at frame 20; its seal is held
        sink.write(redacted(picture(k), pts))
    assert events.log == [] and len(partials(tmp_path)) == 2  # write() did not wait for it
    threading.Timer(0.3, seal.go.set).start()
    start, last = time.monotonic(), None
    if end == "error":  # a full disk here, reported after what was handed off before it
        full = Mock(side_effect=OSError(errno.ENOSPC, "full"))
        monkeypatch.setattr(encoder.SegmentWriter, "encode", full)
        with pytest.raises(StorageFull):
            sink.write(redacted(picture(25), at(2.5)[0]))
    else:
        last = sink.close() if end == "close" else sink.abort()
    assert time.monotonic() - start >= 0.25
    # Segment one first, then the open one: all of it, the unfinished fragment too.
    assert [(o.frames, r) for o, r in events.of("closed")] == [(20, False), (5, end == "error")]
    assert events.log[2:] == ([("full", ANY)] if end == "error" else [])
    assert last == (events.closed()[-1] if end == "close" else None) and partials(tmp_path) == []
    if end == "abort":
        with pytest.raises(OutputError, match="stopped"):
            sink.write(redacted(picture(0), 0))
        sink.abort()  # again: nothing to do, no error


def test_abort_does_not_wait_for_a_hung_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "ABORT_WAIT_SECONDS", 0.3)
    hung, events = HeldSeal(), Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10), seal=hung)
    for k, pts in enumerate(at(0.0, 27)):
        sink.write(redacted(picture(k), pts))
    start = time.monotonic()
    sink.abort()  # never raises, and gives up: both segments are left as partials
    assert time.monotonic() - start < 2.0 and events.log == [] and len(partials(tmp_path)) == 2
    hung.go.set()
    settle(sink)  # the held finish completes after all; recover() publishes the other one
    SegmentSink(tmp_path, config(), events, rate=Fraction(10)).recover()
    assert [(o.frames, r) for o, r in events.of("closed")] == [(20, False), (5, True)]


def test_a_name_still_being_finished_is_not_given_to_the_next_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock stood still (or stepped back) while segment one, a partial, was being finished."""
    stopped = datetime(2026, 12, 1, 19, 36, 5, 123000, tzinfo=timezone.utc)
    monkeypatch.setattr(segments, "datetime", SimpleNamespace(now=lambda tz: stopped))
    seal, events = HeldSeal(), Events()
    sink = SegmentSink(tmp_path, config(), events, rate=Fraction(10), seal=seal)
    for k, pts in enumerate(at(0.0, 25)):
        sink.write(redacted(picture(k), pts))
    seal.go.set()
    sink.close()
    stem = "20261201T193605.123Z"
    assert [o.path.name for o in events.closed()] == [f"{stem}.mp4", f"{stem}-1.mp4"]
