"""The threaded run: capture → detect → redact → sink, each in its own thread, behind small
bounded queues, so FFmpeg, onnxruntime and x264 (all release the GIL) overlap while memory stays
flat on any length of video or any uptime.

Recorded media wait for Veil: nothing is dropped. A live source (`realtime`) never waits: when
the detector falls behind, the oldest frame waiting for it is dropped at capture and counted
("overload"), so latency cannot grow; frames past their deadline are dropped or obscured
(edge.run.vouch).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from edge.capture.base import FrameSource
from edge.config import TrackConfig
from edge.detect.base import FaceDetector
from edge.frames import RawFrame, RedactedFrame
from edge.redact.redactor import Redactor
from edge.run.pace import Pace
from edge.run.realtime import Realtime
from edge.run.report import RunReport
from edge.run.schedule import Schedule
from edge.run.vouch import redact_held, vouch
from edge.sinks.base import Sink, Tap
from edge.track import Held

_QUEUE_DEPTH = 4
_TICK_S = 0.02  # a live detector thread wakes this often to let out frames that are due
_DRAIN_S = 3.0  # after a stop, how long the frames in flight may take to reach the sink
_UNBLOCK_S = 1.0  # after a live stop, how long a source blocked in a read is waited for
T = TypeVar("T")


class _Done:
    pass


_DONE = _Done()


class _Stopped(Exception):
    """The run was stopped hard while the detection thread waited for a frame."""


class _Stage(Generic[T]):
    """A bounded hand-over between threads that gives up when the run is stopping."""

    def __init__(self, stop: threading.Event, depth: int = _QUEUE_DEPTH) -> None:
        self._q: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
        self._stop = stop

    def put(self, item: T | _Done) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def offer(self, item: T | _Done) -> int:
        """Put without waiting. When full, the oldest waiting item makes room: the frame a
        detector takes next is then the freshest but `depth`, not one that waited behind a slow
        search. Returns how many items were dropped (0 or more)."""
        dropped = 0
        while True:
            try:
                self._q.put_nowait(item)
                return dropped
            except queue.Full:
                try:
                    self._q.get_nowait()
                    dropped += 1
                except queue.Empty:
                    continue

    def get(self, tick: float | None = None) -> T | _Done | None:
        """The next item; None after `tick` seconds without one (if given)."""
        while True:
            try:
                return self._q.get(timeout=tick or 0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return _DONE
                if tick is not None:
                    return None


@dataclass(frozen=True)
class Hooks:
    """What a caller hears of a run, and its way to stop a live one (`Conveyor` says when each is
    called and on which thread)."""

    on_frame: Callable[[], None] | None = None
    observe: Callable[[RunReport], None] | None = None
    skipped: Callable[[RedactedFrame, BaseException], bool] | None = None
    taps: Sequence[Tap] = ()
    stopping: threading.Event | None = None


class Conveyor:
    """Redacts every frame of `source` into `sink`, once (`run`); on any error the sink's output
    is discarded. `realtime` makes it a live run (see the module docstring); `schedule` spreads
    the detector's passes over frames (`edge.run.schedule`), and a live run's `pace` decimates
    the source and lengthens the sweep to keep up (`edge.run.pace`). Pass `report` to see the
    counts of a run that ends in an error.

    One thread per stage (`_capture`, `_detect`, `_redact`, `_write`), and the caller's thread
    supervises (`_supervise`). The hooks, in the order one frame meets them:

    1. `observe(report)`, on the redaction thread, once the frame is redacted (or obscured) and
       handed to the sink thread: the audit trail's summaries. The sink thread may already be
       at the next steps for that frame.
    2. `taps` (the preview, the stream out), on the sink thread: each is offered the frame
       before the sink writes it; they never wait.
    3. `skipped(frame, error)`, on the sink thread, only when the sink's write raised: True
       declares the error survivable (a full disk), and the frame is counted as dropped; any
       other answer, or no hook, ends the run with the error.
    4. `on_frame()`, on the sink thread, once the frame is written: progress.

    `stopping` belongs to no frame: it is the live run's stop, which the supervising thread
    watches. Once it is set, a source still blocked in a read (a stalled stream) gets
    `_UNBLOCK_S` before the frames in flight are drained without it.
    """

    def __init__(
        self,
        source: FrameSource,
        detector: FaceDetector,
        redactor: Redactor,
        sink: Sink,
        track: TrackConfig | None = None,
        *,
        realtime: Realtime | None = None,
        report: RunReport | None = None,
        hooks: Hooks = Hooks(),
        schedule: Schedule | None = None,
        pace: Pace | None = None,
    ) -> None:
        self.source, self.detector, self.redactor, self.sink = source, detector, redactor, sink
        self.track, self.realtime, self.hooks = track, realtime, hooks
        self.schedule, self.pace = schedule or Schedule(detector), pace
        self.report = report if report is not None else RunReport()
        self._live = realtime is not None
        self._stop = threading.Event()  # hard stop: an error, or a drain that took too long
        self._captured: _Stage[RawFrame | BaseException] = _Stage(
            self._stop, realtime.queue if realtime else _QUEUE_DEPTH
        )
        self._vouched: _Stage[Held[RawFrame]] = _Stage(self._stop)
        self._redacted: _Stage[RedactedFrame] = _Stage(self._stop)
        self._errors: list[BaseException] = []  # raised in a stage thread, re-raised by `run`
        self._never_delivered = 0  # the source's count of exposures it never delivered, as seen
        self._cut = False  # a live stop went on without the source (stuck in a read)
        self._cut_lock = threading.Lock()
        self._lost = 0  # frames the sink took and then lost (a segment cut back after a failure)

    def run(self) -> RunReport:
        started = time.perf_counter()
        threads = [
            threading.Thread(target=self._capture, name="veil-capture", daemon=True),
            threading.Thread(target=self._guarded(self._detect), name="veil-detect", daemon=True),
            threading.Thread(target=self._guarded(self._redact), name="veil-redact", daemon=True),
            threading.Thread(target=self._guarded(self._write), name="veil-sink", daemon=True),
        ]
        for thread in threads:
            thread.start()
        writer = threads[-1]
        try:
            self._supervise(threads[0], writer)
            if self._errors:
                raise self._errors[0]
            self.report.output = self.sink.close()
            self._settle()
        except BaseException:
            self._stop.set()
            # Every stage has ended (or had its time) before the sink's output is torn down:
            # none may still be inside a native call on what the abort frees.
            for thread in threads:
                thread.join(_DRAIN_S)
            self.sink.abort()
            self._settle()
            raise
        finally:
            self._stop.set()
            for thread in threads[:-1]:
                thread.join(_DRAIN_S)
            self.source.close()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _guarded(self, body: Callable[[], None]) -> Callable[[], None]:
        def target() -> None:
            try:
                body()
            except BaseException as exc:  # handed to the supervising thread, which re-raises it
                self._errors.append(exc)
                self._stop.set()

        return target

    # --- the capture thread ---

    def _capture(self) -> None:
        try:
            frames = self.source.frames()
            while True:
                # The capture thread's CPU time, not the wall clock: a live source's wait for its
                # next frame (a camera's exposure, a file played at its own rate) is not decode.
                began = time.thread_time()
                raw = next(frames, None)
                if raw is None:
                    break
                self.report.decode.add((time.thread_time() - began) * 1000.0)
                with self._cut_lock:
                    if self._cut:
                        return
                    taken = self._count(raw)
                if not self._live and taken and not self._captured.put(raw):
                    return
            self._captured.put(_DONE)
        except BaseException as exc:
            self._captured.put(exc)

    def _count(self, raw: RawFrame) -> bool:
        """Count a captured frame; a live one goes into the queue at once (never waits).
        Returns whether the run takes it (`pace`)."""
        report = self.report
        report.frames_in += 1
        # Exposures the camera made that never reached Veil (picamera2 counts them): source
        # frames too, and lost.
        missed = int(getattr(self.source, "skipped", 0)) - self._never_delivered
        if missed > 0:
            self._never_delivered += missed
            report.frames_in += missed
            for _ in range(missed):
                report.fail("camera-skipped", dropped=True)
        if self.pace is not None and not self.pace.take():
            report.not_taken += 1  # decimated evenly to keep up: counted apart, not lost
            return False
        if self._live:  # a full queue drops its oldest frame
            for _ in range(self._captured.offer(raw)):
                report.fail("overload", dropped=True)
        return True

    # --- the detection thread ---

    def _detect(self) -> None:
        try:
            self._vouch()
        except _Stopped:
            return

    def _vouch(self) -> None:
        for held in vouch(
            self._from_capture(),
            self.detector,
            self.report,
            self.track,
            schedule=self.schedule,
            longest_wait=self.pace.longest_wait if self.pace is not None else None,
            realtime=self.realtime,
        ):
            if not self._vouched.put(held):
                return
            if self.pace is not None and (choice := self.pace.check(self.report)) is not None:
                self.schedule.sweep = choice.sweep
        self._vouched.put(_DONE)

    def _from_capture(self) -> Iterator[RawFrame | None]:
        tick = _TICK_S if self._live else None
        while not isinstance(item := self._captured.get(tick), _Done):
            if isinstance(item, BaseException):
                raise item
            yield item
        if self._stop.is_set():
            # A hard stop (an error, Ctrl-C), not the end of the source: the frames held are
            # not searched to the end; the process may be exiting under this thread.
            raise _Stopped

    # --- the redaction thread ---

    def _redact(self) -> None:
        observe = self.hooks.observe
        for frame in redact_held(self._from_detect(), self.redactor, self.report, self.realtime):
            if not self._redacted.put(frame):
                return
            if observe is not None:
                observe(self.report)
        self._redacted.put(_DONE)

    def _from_detect(self) -> Iterator[Held[RawFrame]]:
        while not isinstance(item := self._vouched.get(), _Done):
            if item is not None:
                yield item

    # --- the sink thread ---

    def _write(self) -> None:
        report, sink, hooks = self.report, self.sink, self.hooks
        counts_itself = hasattr(sink, "recorded")
        while not isinstance(item := self._redacted.get(), _Done):
            if item is None:
                continue
            if self.realtime is not None and self.realtime.misses_sink(item, report.encode):
                report.fail("late", dropped=True)  # redacted, but the deadline is the promise
                continue
            for tap in hooks.taps:
                tap.offer(item)
            began = time.perf_counter()
            try:
                sink.write(item)
            except Exception as exc:
                if hooks.skipped is None or not hooks.skipped(item, exc):
                    raise
                report.fail("disk-full", dropped=True)
                self._settle()
                continue
            report.encode.add((time.perf_counter() - began) * 1000.0)
            if counts_itself:
                self._settle()
            else:
                report.frames_out += 1
            if item.captured is not None:
                report.latency.add((time.monotonic() - item.captured) * 1000.0)
            if hooks.on_frame is not None:
                hooks.on_frame()

    def _settle(self) -> None:
        """A segmented sink counts what is recorded: frames written whole; frames it lost are
        dropped. Other sinks publish all or nothing: each frame written counts."""
        recorded = getattr(self.sink, "recorded", None)
        if recorded is None:
            return
        self.report.frames_out = max(self.report.frames_out, int(recorded))  # never goes back
        lost = int(getattr(self.sink, "lost", 0))
        for _ in range(lost - self._lost):
            self.report.fail("write-failed", dropped=True)
        self._lost = lost

    # --- the supervising thread (the caller's) ---

    def _supervise(self, capture: threading.Thread, writer: threading.Thread) -> None:
        """Wait for the sink thread to end, in short waits so that Ctrl-C reaches this thread;
        after a live stop, cut a source still stuck in a read once it had `_UNBLOCK_S`."""
        stopping = self.hooks.stopping
        stop_seen: float | None = None
        while writer.is_alive():
            writer.join(0.1)
            if stopping is None or not stopping.is_set() or self._cut:
                continue
            stop_seen = stop_seen or time.monotonic()
            if capture.is_alive() and time.monotonic() - stop_seen > _UNBLOCK_S:
                with self._cut_lock:
                    self._cut = True
                    for _ in range(self._captured.offer(_DONE)):
                        self.report.fail("stopped", dropped=True)


def run(
    source: FrameSource,
    detector: FaceDetector,
    redactor: Redactor,
    sink: Sink,
    track: TrackConfig | None = None,
    *,
    on_frame: Callable[[], None] | None = None,
    observe: Callable[[RunReport], None] | None = None,
    report: RunReport | None = None,
    realtime: Realtime | None = None,
    skipped: Callable[[RedactedFrame, BaseException], bool] | None = None,
    stopping: threading.Event | None = None,
    taps: Sequence[Tap] = (),
    schedule: Schedule | None = None,
    pace: Pace | None = None,
) -> RunReport:
    """One `Conveyor` run, its hooks passed by name (see `Conveyor` for when each is called)."""
    hooks = Hooks(on_frame=on_frame, observe=observe, skipped=skipped, taps=taps, stopping=stopping)
    conveyor = Conveyor(
        source,
        detector,
        redactor,
        sink,
        track,
        realtime=realtime,
        report=report,
        hooks=hooks,
        schedule=schedule,
        pace=pace,
    )
    return conveyor.run()
