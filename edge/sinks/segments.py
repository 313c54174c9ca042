"""Segmented recording for the live loop: redacted H.264 in fragmented MP4, one file per
`segment_seconds` of frame time, each named by the UTC time it opened.

Each segment is written under a hidden partial name and renamed into place when it closes. Inside
it, a fragment (a keyframe and the frames up to the next one) reaches the disk, fsynced, every
`fragment_seconds`, so a power cut loses at most the fragment being written; `recover()` cuts what
a killed run left back to its whole fragments and publishes it. Frames keep the source's own
timestamps: segment two of a run starts at 60 s, not at 0.

A full disk pauses recording instead of ending the run: what is whole of the current segment is
published, `write()` raises `StorageFull` for each frame it cannot record, and recording resumes,
in a new segment, once retention or someone else has made room.
"""

from __future__ import annotations

import errno
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

from edge.config import RecordConfig
from edge.durable import sync_folder
from edge.errors import OutputError
from edge.frames import RedactedFrame
from edge.sinks import fmp4, retention
from edge.sinks.atomic import AtomicFile, Seal, is_partial
from edge.sinks.base import Published, require_redacted
from edge.sinks.fmp4 import SegmentWriter

# Paused on a full disk, recording resumes only with this much free (or min_free_bytes if more):
# room for tens of seconds of 720p, so a disk hovering at full does not flap between a new
# one-fragment segment and a pause every second.
RESUME_FREE_BYTES = 16 * 1024 * 1024
# While paused, how often write() looks for free space again (it sweeps retention then, too).
RECHECK_SECONDS = 1.0
CLOCK: Callable[[], float] = time.monotonic  # what that second is measured on (tests set it)
# abort() comes from another thread than write() (the loop's, while its sink thread drains): it
# waits this long for a write in progress, then leaves the partial to the next run's recover().
ABORT_WAIT_SECONDS = 5.0

Discard = Literal["error", "interrupted", "partial"]


class RecordingEvents(Protocol):
    """What the recording reports, for the audit log and the status."""

    def segment_closed(self, out: Published, *, recovered: bool) -> None:
        """A segment was published. recovered: cut back to its whole fragments after a killed
        run or a write error (its last frames may be missing), rather than closed normally."""

    def segment_discarded(
        self, path: Path, frames: int, reason: Discard, error: BaseException | None
    ) -> None:
        """A partial segment was removed with nothing playable in it (or could not be
        published). frames: how many were written to it (0 when found by recover())."""

    def segment_deleted(self, path: Path, sha256: str, reason: str) -> None:
        """Retention deleted a segment; reason: "age", "disk-budget" or "free-space"."""

    def storage_full(self, free_bytes: int) -> None:
        """The disk filled: recording is paused, frames are dropped until it resumes."""

    def storage_resumed(self, free_bytes: int) -> None:
        """There is room again; the next segment opens with the frame being written."""


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
        self._cfg = cfg
        self._events = events
        self._rate = Fraction(rate)
        self._seal = seal
        self._length = Fraction(cfg.segment_seconds)
        self._current: SegmentWriter | None = None
        self._last: tuple[int, Fraction] | None = None  # pts and time base of the last frame
        self._recheck_at = 0.0
        self._free = 0
        self._lock = threading.Lock()
        self._aborted = False

    # --- the Sink interface -------------------------------------------------------------------

    def write(self, frame: RedactedFrame) -> None:
        frame = require_redacted(frame)
        with self._lock:
            self._write(frame)

    def _write(self, frame: RedactedFrame) -> None:
        if self._aborted:
            raise OutputError(f"the recording to {self.folder} was stopped")
        if self.full and not self._resume():
            raise StorageFull(self.folder, self._free)
        try:
            self._record(frame)
        except Exception as exc:
            raise self._failed(exc) from None

    def close(self) -> Published | None:
        """Finish and publish the current segment; None if no segment is open."""
        with self._lock:
            if self._current is None:
                return None
            try:
                out = self._finish()
                self._sweep(keep=out.path)
            except Exception as exc:
                raise self._failed(exc) from None
            return out

    def abort(self) -> None:
        """The run is ending on an error or an interrupt: publish the current segment anyway
        (every frame in it is redacted), or what is whole of it. Never raises."""
        if not self._lock.acquire(timeout=ABORT_WAIT_SECONDS):
            return  # a write is stuck (a hung disk): recover() deals with the partial next run
        try:
            self._aborted = True
            self._abort()
        finally:
            self._lock.release()

    def _abort(self) -> None:
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
        try:
            self._published(out, recovered=False)
            self._sweep(keep=out.path)
        except BaseException:
            pass  # the segment is published; the run is already ending with its own error

    # --- start of a run -----------------------------------------------------------------------

    def recover(self) -> None:
        """Publish, cut back to their whole fragments, the partial segments a killed run left,
        remove those with nothing playable, then sweep retention once."""
        with self._lock:
            self._recover()

    def _recover(self) -> None:
        try:
            entries = sorted(self.folder.iterdir()) if self.folder.is_dir() else []
        except OSError as exc:
            raise OutputError(f"cannot list {self.folder}: {exc.strerror or exc}") from None
        busy = self._current.temp if self._current is not None else None
        for path in entries:
            if is_partial(path) and path.suffix == ".mp4" and path != busy and path.is_file():
                self._recover_one(path)
        self._sweep()

    def _recover_one(self, path: Path) -> None:
        stem = retention.partial_stem(path)  # None: e.g. a seal's scratch copy, never whole
        salvaged = None
        if stem is not None:
            try:
                salvaged = fmp4.salvage(path)
            except OSError:
                salvaged = None
        error: BaseException | None = None
        if stem is not None and salvaged is not None and salvaged.frames > 0:
            try:
                target = AtomicFile(retention.unique_path(self.folder, stem))
                os.replace(path, target.temp)  # commit() then hashes and renames exactly that
                size, digest = target.commit(self._seal)
            except Exception as exc:  # a seal may raise anything
                error = exc
            else:
                out = Published(
                    target.final, size, digest, salvaged.frames, salvaged.first_ts, salvaged.last_ts
                )
                self._events.segment_closed(out, recovered=True)
                return
        try:
            path.unlink(missing_ok=True)
            sync_folder(self.folder)
        except OSError as exc:
            raise OutputError(f"cannot remove {path}: {exc.strerror or exc}") from None
        lost = salvaged.frames if salvaged is not None else 0  # > 0 only if publishing failed
        self._events.segment_discarded(path, lost, "partial", error)

    # --- recording ----------------------------------------------------------------------------

    def _record(self, frame: RedactedFrame) -> None:
        time_base = frame.time_base or 1 / self._rate
        pts = self._next_pts(frame, time_base)
        current = self._current
        if current is not None and (
            current.shape != frame.pixels.shape[:2]
            or current.time_base != time_base
            or (pts - (current.first_pts or 0)) * time_base >= self._length
        ):
            out = self._finish()
            self._sweep(keep=out.path)
            current = None
        if current is None:
            final = retention.unique_path(
                self.folder, retention.segment_stem(datetime.now(timezone.utc))
            )
            current = self._current = SegmentWriter(
                final,
                width=frame.width,
                height=frame.height,
                time_base=time_base,
                rate=self._rate,
                cfg=self._cfg,
            )
        current.encode(frame.pixels, pts)
        self._last = (pts, time_base)

    def _next_pts(self, frame: RedactedFrame, time_base: Fraction) -> int:
        """The frame's own timestamp; one nominal frame step past the last one where it has
        none, or would not move forward. Never reset between segments."""
        last: int | None = None
        if self._last is not None:
            last_pts, last_base = self._last
            last = (
                last_pts if last_base == time_base else math.floor(last_pts * last_base / time_base)
            )
        if (
            frame.pts is not None
            and frame.time_base is not None
            and (last is None or frame.pts > last)
        ):
            return frame.pts
        step = max(1, round(1 / (self._rate * time_base)))
        return 0 if last is None else last + step

    def _finish(self) -> Published:
        """Close and publish the current segment; on failure, publish what is whole of it and
        raise the error as it came."""
        current, self._current = self._current, None
        assert current is not None
        try:
            out = current.finish(self._seal)
        except Exception as exc:
            self._salvage(current, "error", exc)
            raise
        self._published(out, recovered=False)
        return out

    def _failed(self, exc: Exception) -> OutputError:
        """After `exc` while recording: salvage the open segment, pause on a full disk; the one
        error to raise (StorageFull, or an OutputError with a one-line message)."""
        if self._current is not None:
            self._salvage(self._current, "error", exc)
        if _disk_full(exc):
            self._pause()
            return StorageFull(self.folder, self._free)
        if isinstance(exc, OutputError):
            return exc
        return OutputError(f"cannot record to {self.folder}: {_reason(exc)}")

    def _salvage(self, current: SegmentWriter, reason: Discard, error: BaseException) -> None:
        """After a failure: publish the segment's whole fragments, or report it discarded."""
        if self._current is current:
            self._current = None
        current.release()
        try:
            salvaged = fmp4.salvage(current.temp)
            if salvaged.frames > 0:
                size, digest = current.file.commit(self._seal)
                out = Published(
                    current.final,
                    size,
                    digest,
                    salvaged.frames,
                    salvaged.first_ts,
                    salvaged.last_ts,
                )
                self._published(out, recovered=True)
                return
        except Exception:  # a seal may raise anything; the first error is reported
            pass  # nothing publishable is left; commit() has removed its file, if it got that far
        current.file.discard()
        self._events.segment_discarded(current.temp, current.frames, reason, error)

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


def _disk_full(exc: BaseException) -> bool:
    """ENOSPC anywhere in the chain: OSError, PyAV's errors (which subclass it), or the OSError
    an OutputError was raised from."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
