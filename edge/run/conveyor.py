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
from typing import Generic, TypeVar

from edge.capture.base import FrameSource
from edge.config import TrackConfig
from edge.detect.base import FaceDetector
from edge.frames import RawFrame, RedactedFrame
from edge.redact.redactor import Redactor
from edge.run.realtime import Realtime
from edge.run.report import RunReport
from edge.run.vouch import redact_held, vouch
from edge.sinks.base import Sink, Tap
from edge.track.lookahead import Held

_QUEUE_DEPTH = 4
_TICK_S = 0.02  # a live detector thread wakes this often to let out frames that are due
_DRAIN_S = 3.0  # after a stop, how long the frames in flight may take to reach the sink
_UNBLOCK_S = 1.0  # after a live stop, how long a source blocked in a read is waited for
T = TypeVar("T")


class _Done:
    pass


_DONE = _Done()


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
) -> RunReport:
    """Redact every frame of `source` into `sink`. On any error the sink's output is discarded.

    `realtime` makes it a live run (see the module docstring); it also holds back
    `realtime.lookahead` frames instead of `track.lookahead`. `on_frame` runs on the sink thread
    after each frame is written (progress); `observe` on the redaction thread after each frame
    (the audit trail's summaries). `skipped(frame, error)` may declare a sink error survivable:
    the frame is then counted as dropped (a full disk). `stopping` is the live run's stop: once
    set, a source still blocked in a read (a stalled stream) gets `_UNBLOCK_S` before the frames
    in flight are drained without it. `taps` (the preview, the stream out) are offered each
    redacted frame on the sink thread, before the sink writes it; they never wait. Pass `report`
    to see the counts of a run that ends in an error.
    """
    report = report if report is not None else RunReport()
    stop = threading.Event()  # hard stop: an error, or a drain that took too long
    live = realtime is not None
    captured: _Stage[RawFrame | BaseException] = _Stage(
        stop, realtime.queue if realtime else _QUEUE_DEPTH
    )
    vouched: _Stage[Held[RawFrame]] = _Stage(stop)
    redacted: _Stage[RedactedFrame] = _Stage(stop)
    errors: list[BaseException] = []
    started = time.perf_counter()

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def target() -> None:
            try:
                body()
            except BaseException as exc:  # handed to the main thread, which re-raises it
                errors.append(exc)
                stop.set()

        return target

    never_delivered = 0  # the source's count of exposures it never delivered, as last seen
    cut = False  # a live stop went on without the source (stuck in a read)
    cut_lock = threading.Lock()

    def count(raw: RawFrame) -> None:
        """Count a captured frame; a live one goes into the queue at once (never waits)."""
        nonlocal never_delivered
        report.frames_in += 1
        # Exposures the camera made that never reached Veil (picamera2 counts them): source
        # frames too, and lost.
        missed = int(getattr(source, "skipped", 0)) - never_delivered
        if missed > 0:
            never_delivered += missed
            report.frames_in += missed
            for _ in range(missed):
                report.fail("camera-skipped", dropped=True)
        if live:  # a full queue drops its oldest frame
            for _ in range(captured.offer(raw)):
                report.fail("overload", dropped=True)

    def capture() -> None:
        try:
            frames = source.frames()
            while True:
                # The capture thread's CPU time, not the wall clock: a live source's wait for its
                # next frame (a camera's exposure, a file played at its own rate) is not decode.
                began = time.thread_time()
                raw = next(frames, None)
                if raw is None:
                    break
                report.decode.add((time.thread_time() - began) * 1000.0)
                with cut_lock:
                    if cut:
                        return
                    count(raw)
                if not live and not captured.put(raw):
                    return
            captured.put(_DONE)
        except BaseException as exc:
            captured.put(exc)

    def from_capture() -> Iterator[RawFrame | None]:
        while not isinstance(item := captured.get(_TICK_S if live else None), _Done):
            if isinstance(item, BaseException):
                raise item
            yield item

    def detect() -> None:
        for held in vouch(
            from_capture(), detector, report, track, recorded=not live, realtime=realtime
        ):
            if not vouched.put(held):
                return
        vouched.put(_DONE)

    def from_detect() -> Iterator[Held[RawFrame]]:
        while not isinstance(item := vouched.get(), _Done):
            if item is not None:
                yield item

    def redact() -> None:
        for frame in redact_held(from_detect(), redactor, report, realtime):
            if not redacted.put(frame):
                return
            if observe is not None:
                observe(report)
        redacted.put(_DONE)

    lost = 0  # frames the sink took and then lost (a segment cut back after a failure)

    def settle() -> None:
        """A segmented sink counts what is recorded: frames written whole; frames it lost are
        dropped. Other sinks publish all or nothing: each frame written counts."""
        nonlocal lost
        recorded = getattr(sink, "recorded", None)
        if recorded is None:
            return
        report.frames_out = max(report.frames_out, int(recorded))  # summaries never go back
        for _ in range(int(getattr(sink, "lost", 0)) - lost):
            report.fail("write-failed", dropped=True)
        lost = int(getattr(sink, "lost", 0))

    def write() -> None:
        counts_itself = hasattr(sink, "recorded")
        while not isinstance(item := redacted.get(), _Done):
            if item is None:
                continue
            for tap in taps:
                tap.offer(item)
            began = time.perf_counter()
            try:
                sink.write(item)
            except Exception as exc:
                if skipped is None or not skipped(item, exc):
                    raise
                report.fail("disk-full", dropped=True)
                settle()
                continue
            report.encode.add((time.perf_counter() - began) * 1000.0)
            if counts_itself:
                settle()
            else:
                report.frames_out += 1
            if item.captured is not None:
                report.latency.add((time.monotonic() - item.captured) * 1000.0)
            if on_frame is not None:
                on_frame()

    threads = [
        threading.Thread(target=capture, name="veil-capture", daemon=True),
        threading.Thread(target=guarded(detect), name="veil-detect", daemon=True),
        threading.Thread(target=guarded(redact), name="veil-redact", daemon=True),
        threading.Thread(target=guarded(write), name="veil-sink", daemon=True),
    ]
    for thread in threads:
        thread.start()
    writer = threads[-1]
    stop_seen: float | None = None
    unblocked = False
    try:
        while writer.is_alive():
            writer.join(0.1)  # short waits, so that Ctrl-C reaches this thread
            if stopping is not None and stopping.is_set() and not unblocked:
                stop_seen = stop_seen or time.monotonic()
                if threads[0].is_alive() and time.monotonic() - stop_seen > _UNBLOCK_S:
                    unblocked = True
                    with cut_lock:
                        cut = True
                        for _ in range(captured.offer(_DONE)):
                            report.fail("stopped", dropped=True)
        if errors:
            raise errors[0]
        report.output = sink.close()
        settle()
    except BaseException:
        stop.set()
        writer.join(_DRAIN_S)
        sink.abort()
        settle()
        raise
    finally:
        stop.set()
        for thread in threads[:-1]:
            thread.join(_DRAIN_S)
        source.close()
    report.seconds = time.perf_counter() - started
    return report
