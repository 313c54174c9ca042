"""Writing one segment: H.264 into fragmented MP4 under a hidden partial name, each fragment
handed to the kernel as the muxer completes it and fsynced in the background; and that
background (`Background`: a `Syncer` for the fsyncs, a `Worker` to finish closed segments).

The disk can stall for hundreds of milliseconds (an SD card, a journal commit, another writer),
and a live frame must not wait for that: of SegmentWriter's methods only `publish()`, `finish()`
and `salvage()` wait on the disk, and the sink runs them where it can afford to.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av

from edge.config import RecordConfig
from edge.frames import Pixels
from edge.sinks import fmp4
from edge.sinks.atomic import AtomicFile, Seal
from edge.sinks.base import Published
from edge.sinks.h264 import add_h264_stream, video_frame

_MUXER = {
    # A fragment at every keyframe, the header written first (no seeking back to it: a killed
    # run's file is readable as far as it goes), sample offsets counted from each moof.
    # frag_discont + no edit list + no shifting: the first fragment's decode time is the first
    # frame's source time, so that a segment starting at 60 s reads back as starting at 60 s.
    "movflags": "frag_keyframe+empty_moov+default_base_moof+frag_discont",
    "use_editlist": "0",
    "avoid_negative_ts": "make_non_negative",
}
# A background thread with nothing to do ends after this long (the next job starts another), so
# that sinks which are done leave no threads behind, yet a running one does not start a thread
# per fragment.
IDLE_SECONDS = 5.0


def disk_full(exc: BaseException) -> bool:
    """Whether what the writer raised means a full disk: ENOSPC anywhere in the chain (OSError,
    PyAV's errors, which subclass it, or the OSError an OutputError was raised from)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Worker:
    """Runs jobs in the order given on one background thread; the caller never waits for them
    unless it asks to (`wait`). An exception a job raises is kept for `take_errors()`, for the
    caller to raise where it can be handled; the next job runs regardless. Daemon thread: a hung
    disk must not keep the process from exiting."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._jobs: deque[Callable[[], object]] = deque()  # the running one stays first till done
        self._alive = False
        self._errors: list[Exception] = []

    def submit(self, job: Callable[[], object]) -> None:
        with self._cond:
            self._jobs.append(job)
            if not self._alive:
                self._alive = True
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None, *, below: int = 1) -> bool:
        """Until fewer than `below` jobs are waiting or running; False if `timeout` came first."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._jobs) < below, timeout)

    def take_errors(self) -> list[Exception]:
        with self._cond:
            errors, self._errors = self._errors, []
            return errors

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: bool(self._jobs), IDLE_SECONDS):
                    self._alive = False  # decided under the lock: the next submit() starts one
                    return
                job = self._jobs[0]
            try:
                job()
            except BaseException as exc:  # even a job's SystemExit must not strand the queue
                kept = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
                with self._cond:
                    self._errors.append(kept)
            finally:
                with self._cond:
                    self._jobs.popleft()
                    self._cond.notify_all()


class Syncer:
    """fsyncs files on a background thread. Per file at most one fsync runs and one waits: a
    request while one waits is folded into it, since an fsync covers every byte written to the
    file before it begins. So a disk slower than the requests makes fewer, larger syncs, never a
    queue, and the requester never waits."""

    def __init__(self) -> None:
        self._worker = Worker("veil-fsync")
        self._lock = threading.Lock()
        self._waiting: dict[object, int] = {}  # a file's owner -> our copy of its descriptor

    def request(self, owner: object, fd: int) -> None:
        """fsync, soon, the file `fd` is open on; the caller may close `fd` at any time."""
        copy = os.dup(fd)  # ours to sync and close: the owner's may be closed (and reused) first
        with self._lock:
            folded = self._waiting.get(owner)
            self._waiting[owner] = copy
        if folded is None:
            self._worker.submit(lambda: self._sync(owner))
        else:
            os.close(folded)  # the waiting sync now runs on `copy`, which sees everything

    def wait(self, timeout: float | None = None) -> bool:
        """Until every requested fsync has returned; False if `timeout` came first."""
        return self._worker.wait(timeout)

    def take_errors(self) -> list[Exception]:
        return self._worker.take_errors()

    def _sync(self, owner: object) -> None:
        with self._lock:
            fd = self._waiting.pop(owner)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class SegmentWriter:
    """One segment being written: H.264 into fragmented MP4 under the AtomicFile's hidden name.
    Raises whatever the encoder, muxer or disk raise (OSError with ENOSPC on a full disk); the
    caller decides what is left worth publishing. `end()` runs on the thread that encodes;
    after it, `publish()` (or `release()`) may run on another."""

    def __init__(
        self,
        final: Path,
        *,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction,
        cfg: RecordConfig,
        syncer: Syncer,
    ) -> None:
        self.file = AtomicFile(final)
        self.final, self.temp = final, self.file.temp
        self.shape = (height, width)
        self.time_base = time_base
        self.frames = 0
        self.whole_frames = 0  # of them, in fragments the muxer has written whole
        self.counted = False  # its frames are in the sink's `recorded` (set by the sink)
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self._syncer = syncer
        self._synced = 0
        self._io: BinaryIO | None = None
        self._container: Any = None
        try:
            # Our own file object: its descriptor is what gets fsynced after each fragment.
            self._io = self.temp.open("r+b")
            self._container = av.open(self._io, mode="w", format="mp4", container_options=_MUXER)
            # A keyframe, hence a fragment, every fragment_seconds and only then.
            stream = add_h264_stream(
                self._container,
                width=width,
                height=height,
                rate=rate,
                time_base=time_base,
                crf=cfg.crf,
                preset=cfg.preset,
                keyint=round(cfg.fragment_seconds * rate),
            )
            self._stream = stream
        except BaseException:
            self.release()
            self.file.discard()
            raise

    def encode(self, pixels: Pixels, pts: int) -> None:
        frame = video_frame(pixels, self._stream.pix_fmt)
        frame.pts = pts
        frame.time_base = self.time_base
        self._container.mux(self._stream.encode(frame))
        self.frames += 1
        self.last_pts = pts
        if self.first_pts is None:
            self.first_pts = pts
        # The muxer writes a fragment only once it is complete (when the next keyframe comes):
        # the file grew exactly when one did. Hand it to the kernel now (a killed process then
        # loses none of it) and have it fsynced in the background (a power cut: see Syncer).
        assert self._io is not None
        if self._io.tell() != self._synced:
            self.whole_frames = self.frames - 1  # this frame's keyframe opens the next fragment
            self._io.flush()
            self._syncer.request(self, self._io.fileno())
            self._synced = self._io.tell()

    def end(self) -> None:
        """Write the last fragment and the index, into the kernel: the quick part of finishing,
        which must run on the thread that encoded (the muxer is not shared)."""
        self._container.mux(self._stream.encode(None))
        self._container.close()
        # Let the encoder's buffers go now, not when the background has published the file:
        # otherwise two encoders' worth of memory is held across every rotation.
        self._container = self._stream = None
        assert self._io is not None
        self._io.flush()
        # Synced like any fragment, not only by publish(), which may be behind a slow seal.
        self._syncer.request(self, self._io.fileno())

    def publish(self, seal: Seal | None) -> Published:
        """After `end()`: publish (the file's fsync, hash and rename are commit's)."""
        assert self._io is not None
        self._io.close()
        size, digest = self.file.commit(seal)
        tb = self.time_base
        first = None if self.first_pts is None else float(self.first_pts * tb)
        last = None if self.last_pts is None else float(self.last_pts * tb)
        return Published(self.final, size, digest, self.frames, first, last)

    def finish(self, seal: Seal | None) -> Published:
        """Flush the last fragment and publish, here and now."""
        self.end()
        return self.publish(seal)

    def salvage(self, seal: Seal | None) -> Published | None:
        """After a failure: publish the segment's whole fragments; None (and the partial
        removed) if nothing is playable or publishing it failed too."""
        self.release()
        try:
            kept = fmp4.salvage(self.temp)
            if kept.frames > 0:
                size, digest = self.file.commit(seal)
                return Published(self.final, size, digest, kept.frames, kept.first_ts, kept.last_ts)
        except Exception:  # a seal may raise anything; the caller reports the first error
            pass  # commit() has removed its file, if it got that far
        self.file.discard()
        return None

    def release(self) -> None:
        """Close the muxer and the file after a failure, ignoring further errors; the partial
        file stays for salvage()."""
        try:
            if self._container is not None:
                self._container.close()
        except Exception:  # already failing; the file is judged by salvage()
            pass
        try:
            if self._io is not None:
                self._io.close()
        except OSError:
            pass


class Background:
    """A segment sink's work off its writing thread: each fragment's fsync (`syncer`), and
    finishing closed segments, one at a time in the order they were handed over."""

    def __init__(self, backlog: int) -> None:
        self.syncer = Syncer()
        self._worker = Worker("veil-finish")
        self._backlog = backlog
        self._lock = threading.Lock()
        self._names: set[Path] = set()

    def taken(self) -> frozenset[Path]:
        """Final names of the segments handed over and not yet renamed into place."""
        with self._lock:
            return frozenset(self._names)

    def finish(
        self, writer: SegmentWriter, job: Callable[[SegmentWriter], Published]
    ) -> list[Published]:
        """Run `job(writer)` after every job handed over before it; the list gets its result.
        While `backlog` segments are unfinished, first waits for the oldest: the disk is then a
        whole segment behind, and waiting slows recording instead of piling up work."""
        self._worker.wait(below=self._backlog)
        with self._lock:
            self._names.add(writer.final)
        done: list[Published] = []

        def run() -> None:
            try:
                done.append(job(writer))
            finally:
                with self._lock:
                    self._names.discard(writer.final)

        self._worker.submit(run)
        return done

    def wait(self, timeout: float | None = None) -> bool:
        """Until every job and fsync handed over is done; False if `timeout` came first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._worker.wait(timeout):
            return False
        return self.syncer.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def take_errors(self) -> list[Exception]:
        """What the jobs and fsyncs raised since last asked, oldest first (jobs' first)."""
        return self._worker.take_errors() + self.syncer.take_errors()
