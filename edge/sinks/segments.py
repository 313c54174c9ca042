"""Segmented recording for the live loop: redacted H.264 in fragmented MP4, one file per
`segment_seconds` of frame time, each named by the UTC time it opened, written under a hidden
partial name and renamed into place when it closes. Frames keep the source's own timestamps:
segment two of a run starts at 60 s, not at 0. `recover()` cuts what a killed run left back to
its whole fragments and publishes it.

`write()` does not wait on the disk (in a live run every frame behind a slow fsync would be late)
except after an error, or when finishing has fallen FINISH_BACKLOG segments behind:

- Each fragment (a keyframe and the frames up to the next) is handed to the kernel as the muxer
  completes it, every `fragment_seconds`, so a killed process loses none of it, and fsynced on a
  background thread (encoder.Syncer: per file one fsync running, one waiting). It is safe from a
  power cut once an fsync begun after it was written has returned. So a power cut loses the
  fragment being encoded plus the whole ones written since the start of the last fsync that
  returned: while fsyncs take under `fragment_seconds` (the normal case), the last whole one at
  most, i.e. under 2 x `fragment_seconds` of footage (fsync inside write() lost under 1 x); more
  on a disk slower than that.
- A closing segment gets its last fragment and index written here; one background worker then,
  a segment at a time in order, fsyncs, seals, hashes and renames it, reports segment_closed and
  sweeps retention (deletions after the close that caused them). Until renamed it is a partial,
  which recover() publishes after a power cut.
- A background error is raised by the next `write()` or `close()` as if it happened there (the
  open segment salvaged, a full disk pausing recording), after all that was handed off has been
  finished and reported, so events keep their order. `close()` waits for all of it, `abort()`
  for up to ABORT_WAIT_SECONDS.

A full disk pauses recording instead of ending the run: what is whole of the current segment is
published, `write()` raises `StorageFull` for each frame it cannot record, and recording resumes,
in a new segment, once retention or someone else has made room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

from edge.config import RecordConfig
from edge.errors import OutputError
from edge.frames import RedactedFrame
from edge.sinks import recovery, retention
from edge.sinks.atomic import Seal
from edge.sinks.base import Discard, Published, RecordingEvents, require_redacted
from edge.sinks.encoder import Background, SegmentWriter, disk_full
from edge.sinks.timeline import Timeline

# Paused on a full disk, recording resumes only with this much free (or min_free_bytes if more):
# room for tens of seconds of 720p, so a disk hovering at full does not flap between a new
# one-fragment segment and a pause every second.
RESUME_FREE_BYTES = 16 * 1024 * 1024
# While paused, how often write() looks for free space again (it sweeps retention then, too).
RECHECK_SECONDS = 1.0
CLOCK: Callable[[], float] = time.monotonic  # what that second is measured on (tests set it)
# abort() comes from another thread than write() (the loop's, while its sink thread drains): it
# waits this long in all for a write and background work in progress, then leaves the partials to
# the next run's recover().
ABORT_WAIT_SECONDS = 5.0
# Closed segments unfinished (one being finished, one waiting) before a rotation waits: the disk
# is then a whole segment behind, and waiting slows recording instead of piling up work.
FINISH_BACKLOG = 2


class StorageFull(OutputError):
    """The frame was not recorded: the disk is full. Recording resumes by itself."""

    def __init__(self, folder: Path, free_bytes: int) -> None:
        super().__init__(
            f"recording paused: the disk of {folder} is full ({free_bytes} bytes free)"
        )
        self.free_bytes = free_bytes


class SegmentSink:
    def __init__(
        self,
        folder: Path,
        cfg: RecordConfig,
        events: RecordingEvents,
        *,
        rate: Fraction,
        seal: Seal | None = None,
    ) -> None:
        """`rate` is the nominal frame rate: it sets the keyframe interval, and the step for
        frames without a usable timestamp. `seal` rewrites each finished segment before it is
        published (provenance)."""
        if rate <= 0:
            raise ValueError(f"frame rate must be positive, got {rate}")
        self.folder = folder
        self.segments = 0
        self.full = False
        self.bytes_written = 0
        self._done = 0  # frames of segments no longer open, as far as they are whole
        self.lost = 0  # frames write() took that a failure then cut from their segment
        self._cfg = cfg
        self._events = events
        self._rate = Fraction(rate)
        self._seal = seal
        self._length = Fraction(cfg.segment_seconds)
        self._current: SegmentWriter | None = None
        self._timeline = Timeline(self._rate)  # the stream out stamps frames the same way
        self._recheck_at = 0.0
        self._free = 0
        self._lock = threading.Lock()
        self._aborted = False
        self._background = Background(FINISH_BACKLOG)

    # --- the Sink interface -------------------------------------------------------------------

    def write(self, frame: RedactedFrame) -> None:
        frame = require_redacted(frame)
        with self._lock:
            self._write(frame)

    def _write(self, frame: RedactedFrame) -> None:
        if self._aborted:
            raise OutputError(f"the recording to {self.folder} was stopped")
        if errors := self._background.take_errors():
            raise self._failed(*errors) from None
        if self.full and not self._resume():
            raise StorageFull(self.folder, self._free)
        try:
            self._record(frame)
        except Exception as exc:
            raise self._failed(exc) from None

    def close(self) -> Published | None:
        """Finish and publish the current segment, after all handed off before it; None if no
        segment was open."""
        with self._lock:
            try:
                done = self._hand_off() if self._current is not None else None
            except Exception as exc:
                raise self._failed(exc) from None
            self._background.wait()
            if errors := self._background.take_errors():
                raise self._failed(*errors) from None
            return done[0] if done else None

    def abort(self) -> None:
        """The run is ending on an error or an interrupt: let the background finish what it was
        handed, then publish the current segment anyway (every frame in it is redacted), or what
        is whole of it. Never raises."""
        deadline = time.monotonic() + ABORT_WAIT_SECONDS
        if not self._lock.acquire(timeout=ABORT_WAIT_SECONDS):
            return  # a write is stuck (a hung disk): recover() deals with the partial next run
        try:
            self._aborted = True
            self._abort(deadline)
        finally:
            self._lock.release()

    def _abort(self, deadline: float) -> None:
        try:
            settled = self._background.wait(max(0.0, deadline - time.monotonic()))
        except BaseException:  # a second Ctrl-C: stop waiting, as for a hung disk
            settled = False
        if not settled:
            return  # recover() publishes the partials next run
        self._background.take_errors()  # salvaged and reported; the run has its own error
        current, self._current = self._current, None
        if current is None:
            return
        try:
            out = current.finish(self._seal)
        except BaseException as exc:  # even a second Ctrl-C must not skip the log
            try:
                self._salvage(current, "interrupted", exc)
            except BaseException:
                pass  # the events themselves failed: nothing is left to report to
            return
        self._count(current, current.frames)
        try:
            self._published(out, recovered=False)
            self._sweep(keep=out.path)
        except BaseException:
            pass  # the segment is published; the run is already ending with its own error

    # --- start of a run -----------------------------------------------------------------------

    def recover(self, logged: Collection[Path] | None = None) -> None:
        """Publish, cut back to their whole fragments, the partial segments a killed run left,
        remove those with nothing playable; with `logged` (the resolved paths the audit log
        names), also report finished segments it does not name (a run killed between a rename
        and its record); then sweep retention once."""
        with self._lock:
            self._background.wait()  # what was handed off is reported first, no partial then
            busy = self._current.temp if self._current is not None else None
            published = recovery.recover_partials(self.folder, self._events, self._seal, busy)
            if logged is not None:
                recovery.adopt_unlogged(self.folder, self._events, {*logged, *published})
            self._sweep()

    # --- recording ----------------------------------------------------------------------------

    def _record(self, frame: RedactedFrame) -> None:
        pts, time_base = self._timeline.peek(frame)  # never reset between segments
        current = self._current
        if current is not None and (
            current.shape != frame.pixels.shape[:2]
            or current.time_base != time_base
            or (pts - (current.first_pts or 0)) * time_base >= self._length
        ):
            self._hand_off()
            current = None
        if current is None:
            # Not the name of one still being finished: the wall clock may have stepped back.
            stem = retention.segment_stem(datetime.now(timezone.utc))
            current = self._current = SegmentWriter(
                retention.unique_path(self.folder, stem, taken=self._background.taken()),
                width=frame.width,
                height=frame.height,
                time_base=time_base,
                rate=self._rate,
                cfg=self._cfg,
                syncer=self._background.syncer,
            )
        current.encode(frame.pixels, pts)
        self._timeline.take(pts, time_base)

    def _hand_off(self) -> list[Published]:
        """Close the current segment here and hand the rest of its finishing (_complete) to the
        background; the list gets its Published when that is done. If even its last fragment
        cannot be written, raises with the segment still current, for _failed() to salvage."""
        current = self._current
        assert current is not None
        current.end()
        self._count(current, current.frames)  # all of it is written whole now
        self._current = None
        return self._background.finish(current, self._complete)

    def _complete(self, current: SegmentWriter) -> Published:
        """Publish a segment, then sweep retention; on failure, publish what is whole of it and
        raise the error as it came."""
        try:
            out = current.publish(self._seal)
        except Exception as exc:
            self._salvage(current, "error", exc)
            raise
        self._published(out, recovered=False)
        self._sweep(keep=out.path)
        return out

    def _failed(self, exc: Exception, *more: Exception) -> OutputError:
        """After `exc` (and `more`), here or in the background: let the background finish what
        it holds, salvage the open segment, pause on a full disk; the one error to raise
        (StorageFull, or an OutputError with a one-line message)."""
        self._background.wait()  # its events come before the salvage's and storage_full
        errors = [exc, *more, *self._background.take_errors()]
        current, self._current = self._current, None
        if current is not None:
            self._salvage(current, "error", exc)
        if any(disk_full(e) for e in errors):
            self._pause()
            return StorageFull(self.folder, self._free)
        if isinstance(exc, OutputError):
            return exc
        return OutputError(f"cannot record to {self.folder}: {_reason(exc)}")

    def _salvage(self, current: SegmentWriter, reason: Discard, error: BaseException) -> None:
        """After a failure: publish the segment's whole fragments, or report it discarded."""
        out = current.salvage(self._seal)
        survived = out.frames if out is not None else 0
        self.lost += current.frames - survived
        self._count(current, survived)
        if out is not None:
            self._published(out, recovered=True)
        else:
            self._events.segment_discarded(current.temp, current.frames, reason, error)

    @property
    def segment_open(self) -> bool:
        """Whether a segment is being written: until it closes, `segments` does not count it."""
        return self._current is not None

    @property
    def recorded(self) -> int:
        """Frames written whole: in segments closed (or being finished), and in whole fragments
        of the open one. The loop counts these as recorded, the rest as in flight; it only
        goes down if a segment's publishing fails after its close (and `lost` says how much)."""
        current = self._current
        return self._done + (current.whole_frames if current is not None else 0)

    def _count(self, current: SegmentWriter, whole: int) -> None:
        """`current` leaves the open slot with `whole` of its frames written whole."""
        if current.counted:
            self._done -= current.frames - whole
        else:
            self._done += whole
            current.counted = True

    def _published(self, out: Published, *, recovered: bool) -> None:
        self.segments += 1
        self.bytes_written += out.size
        self._events.segment_closed(out, recovered=recovered)

    # --- retention and a full disk ------------------------------------------------------------

    def _sweep(self, *, keep: Path | None = None, min_free: int | None = None) -> None:
        retention.sweep(
            self.folder, self._cfg, self._events.segment_deleted, min_free=min_free, keep=keep
        )

    def _pause(self) -> None:
        self.full = True
        try:
            self._free = retention.free_bytes(self.folder)
        except OutputError:
            self._free = 0
        self._recheck_at = CLOCK() + RECHECK_SECONDS
        self._events.storage_full(self._free)

    def _resume(self) -> bool:
        """While paused, at most once a second: sweep retention and look for room again."""
        now = CLOCK()
        if now < self._recheck_at:
            return False
        self._recheck_at = now + RECHECK_SECONDS
        needed = max(self._cfg.min_free_bytes, RESUME_FREE_BYTES)
        # With free-space retention on, delete oldest segments up to the resume mark, not just
        # min_free_bytes: otherwise a small min_free_bytes could leave recording paused for good.
        self._sweep(min_free=needed if self._cfg.min_free_bytes > 0 else None)
        self._free = retention.free_bytes(self.folder)
        if self._free < needed:
            return False
        self.full = False
        self._events.storage_resumed(self._free)
        return True


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
