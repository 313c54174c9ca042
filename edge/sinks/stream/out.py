"""The redacted stream out: the frames the recording gets, as H.264 pushed to an RTSP server
(`--stream-out rtsp://HOST:PORT/PATH`) or written to standard output (`--stream-out -`).

It is a Tap: `offer` stamps the frame, puts it in a short queue and returns; its own thread
encodes and sends. A receiver that is slow, stalls or goes away costs frames (counted, the oldest
first), never the caller's time, and never the recording: failures stay in here. An RTSP server
that is lost is reconnected to with backoff, each new connection starting with a keyframe; a
standard output whose reader has gone is final (a pipe has no second connection).

Frames carry the recording's own timestamps (edge.sinks.timeline: every frame offered is stamped,
the ones dropped too), so a moment in the stream is the same moment in the recorded segments.
What it prints (to stderr) and reports (OutputEvents) never holds the URL, which may hold a
password, nor an exception's message, which may quote it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from fractions import Fraction
from typing import BinaryIO, Protocol

from edge.config import StreamOutConfig
from edge.frames import Pixels, RedactedFrame
from edge.sinks.base import OutputEvents, require_redacted
from edge.sinks.nice import below_the_loop
from edge.sinks.stream.rtsp import TIME_BASE, Lost, Pusher
from edge.sinks.stream.stdout import StdoutLink
from edge.sinks.timeline import Timeline

NAME = "stream"  # the output's name in OutputEvents and the audit log
# close(): what is queued still goes out for this long, then the connection is finished (the
# encoder flushed, TEARDOWN or the trailer) until CLOSE_SECONDS, then the thread is left behind.
DRAIN_SECONDS = 1.0
CLOSE_SECONDS = 3.0
# A connection that lasted this long resets the backoff: one that drops at once keeps backing off.
STABLE_SECONDS = 10.0
IDLE_POLL_SECONDS = 0.25  # how often an idle thread looks at the connection


class _Link(Protocol):
    shape: tuple[int, int] | None
    connected: bool

    def send(self, pixels: Pixels, pts: int, cutoff: float | None = None) -> None: ...
    def poll(self) -> None: ...
    def close(self, cutoff: float) -> None: ...
    def kill(self) -> None: ...


_Item = tuple[RedactedFrame, int, Fraction]


class StreamOut:
    """The stream out as a Tap: `start`, then `offer` each redacted frame, then `close`."""

    def __init__(
        self,
        target: str,
        cfg: StreamOutConfig,
        rate: Fraction,
        events: OutputEvents | None = None,
        *,
        stdout: BinaryIO | None = None,
    ) -> None:
        """`target`: rtsp://... or rtsps://..., or - for `stdout` (default sys.stdout.buffer).
        `rate`: the nominal frame rate (keyframe interval, steps for frames without a time)."""
        if target != "-" and not target.startswith(("rtsp://", "rtsps://")):
            raise ValueError("the stream out goes to rtsp://..., rtsps://..., or - for stdout")
        self._target = target
        self._cfg = cfg
        self._rate = Fraction(rate)
        self._events = events
        self._stdout = stdout
        self._keyint = max(1, round(cfg.keyframe_seconds * self._rate))
        self._timeline = Timeline(self._rate)
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._accepting = True  # false between reconnecting attempts, and for good once final
        self._closing = False
        self._cutoff: float | None = None  # while closing: when sending gives up
        self._thread: threading.Thread | None = None
        self._link: _Link | None = None
        self._spare: Pusher | None = None  # the next connection's child, importing meanwhile
        self._last_pts: int | None = None
        self._sent = self._dropped = self._reconnects = 0
        self._unconfirmed = 0  # handed to a connection not yet taken: sent, or dropped if it fails
        self._connected_at: float | None = None
        self._lost_at: float | None = None  # when the current outage began
        self._attempts = 0  # connection tries since the last connection was made
        self._failures = 0  # for the backoff
        self._retry_at: float | None = None
        self._final = False

    @property
    def kind(self) -> str:
        return "stdout" if self._target == "-" else "rtsp"

    def start(self) -> None:
        """Start the thread; for RTSP also the first connection's child, which imports PyAV
        while the camera opens, so that the first frames do not wait for it."""
        if self._thread is None:
            if self.kind == "rtsp":
                try:
                    self._spare = self._spawn()
                except Lost:
                    pass  # spawned with the first frame instead
            self._thread = threading.Thread(target=self._run, name="veil-stream-out", daemon=True)
            self._thread.start()

    def offer(self, frame: RedactedFrame) -> None:
        """Queue the frame for the stream's thread and return; O(1), never waits on output."""
        frame = require_redacted(frame)
        with self._cond:
            pts, time_base = self._timeline.stamp(frame)
            if not self._accepting or self._closing:
                self._dropped += 1
                return
            if len(self._queue) >= self._cfg.queue:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append((frame, pts, time_base))
            self._cond.notify()

    def close(self) -> None:
        """Send what is queued (briefly), finish the connection, stop the thread: in bounded
        time, whatever the receiver does."""
        started = time.monotonic()
        with self._cond:
            self._closing = True
            self._cutoff = started + DRAIN_SECONDS
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(CLOSE_SECONDS)

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {
                "sent": self._sent,
                "dropped": self._dropped,
                "reconnects": self._reconnects,
                "attempts": self._attempts,  # connection tries since the last one was made
                "connected": int(self._connected_at is not None),
            }

    # --- the stream's thread ------------------------------------------------------------------

    def _run(self) -> None:
        below_the_loop()
        try:
            while (item := self._take()) is not None:
                self._deliver(*item)
        except Exception:  # a bug here must not take the recording with it: give up quietly
            self._final = True
            self._lose("error")
        finally:
            self._shut()

    def _take(self) -> _Item | None:
        """The next frame to send; None once closing (and drained, or past the cutoff), or
        final. Between attempts, waits out the backoff, the frames offered meanwhile dropped."""
        while True:
            with self._cond:
                now = time.monotonic()
                if self._queue and not (self._closing and self._past_cutoff(now)):
                    return self._queue.popleft()
                if self._closing or self._final:
                    self._dropped += len(self._queue)
                    self._queue.clear()
                    return None
                timeout = IDLE_POLL_SECONDS
                if self._retry_at is not None:
                    if now >= self._retry_at:
                        self._retry_at = None
                        self._accepting = True
                    else:
                        timeout = min(timeout, self._retry_at - now)
                self._cond.wait(timeout)
            self._check()

    def _past_cutoff(self, now: float) -> bool:
        return self._cutoff is not None and now >= self._cutoff

    def _check(self) -> None:
        """While idle: notice a connection that came up or went away."""
        if self._link is None:
            return
        try:
            self._link.poll()
        except Lost as lost:
            self._lose(lost.reason)
            return
        self._confirm()

    def _deliver(self, frame: RedactedFrame, pts: int, time_base: Fraction) -> None:
        shape = (frame.height, frame.width)
        if self._link is not None and self._link.shape != shape:
            self._finish_link()  # a new size is a new stream: a new connection, not an outage
        try:
            if self._link is None:
                self._link = self._open(shape)
            self._link.send(frame.pixels, self._out_pts(pts, time_base), self._cutoff)
            self._link.poll()
        except Lost as lost:
            self._lose(lost.reason)
            with self._cond:
                self._dropped += 1  # this frame
            return
        with self._cond:
            if self._link.connected:
                self._sent += 1
            else:
                self._unconfirmed += 1
        self._confirm()

    def _out_pts(self, pts: int, time_base: Fraction) -> int:
        """The recording's timestamp in the stream's 1/90000 s, always moving forward."""
        out = round(pts * time_base / TIME_BASE)
        if self._last_pts is not None and out <= self._last_pts:
            out = self._last_pts + 1
        self._last_pts = out
        return out

    def _open(self, shape: tuple[int, int]) -> _Link:
        self._attempts += 1
        cfg = self._cfg
        if self.kind == "stdout":
            file = self._stdout if self._stdout is not None else sys.stdout.buffer
            return StdoutLink(
                file,
                cfg.stdout_format,
                shape,
                rate=self._rate,
                crf=cfg.crf,
                preset=cfg.preset,
                keyint=self._keyint,
                timeout_s=cfg.timeout_s,
            )
        pusher, self._spare = self._spare or self._spawn(), None
        try:
            pusher.start(
                shape,
                rate=self._rate,
                crf=cfg.crf,
                preset=cfg.preset,
                keyint=self._keyint,
                cutoff=self._cutoff,
            )
        except Lost:
            pusher.kill()
            raise
        return pusher

    def _spawn(self) -> Pusher:
        try:
            return Pusher(self._target, self._cfg.timeout_s)
        except OSError:  # no process to be had (out of memory, of pids): try again later
            raise Lost("error") from None

    def _confirm(self) -> None:
        """The connection has been taken: the outage, if any, is over."""
        link = self._link
        if link is None or not link.connected or self._connected_at is not None:
            return
        now = time.monotonic()
        with self._cond:
            self._connected_at = now
            self._sent += self._unconfirmed
            self._unconfirmed = 0
            attempts, self._attempts = self._attempts, 0
            lost_at, self._lost_at = self._lost_at, None
            if lost_at is not None:
                self._reconnects += 1
        if lost_at is not None:
            offline = now - lost_at
            _note(f"veil: stream out back after {offline:.1f} s")
            self._report("output_restored", NAME, offline, attempts)

    def _report(self, event: str, *args: object) -> None:
        """Tell `events`; one that fails must not stop the stream (nor, raising here, the
        thread): the audit log's own errors are the audit log's to raise."""
        if self._events is None:
            return
        try:
            getattr(self._events, event)(*args)
        except Exception:
            pass

    def _lose(self, reason: str) -> None:
        """The connection (or the try to make one) failed: count, report a new outage once,
        and back off; for standard output, give up for good."""
        link, self._link = self._link, None
        if link is not None:
            link.kill()
        now = time.monotonic()
        with self._cond:
            self._dropped += self._unconfirmed
            self._unconfirmed = 0
            stable = self._connected_at is not None and now - self._connected_at >= STABLE_SECONDS
            self._connected_at = None
            if self._closing:  # a receiver that cannot take the last frames: not a new outage,
                self._cutoff = now  # and no new connection for them
                return
            self._failures = 1 if stable else self._failures + 1
            self._accepting = False
            self._dropped += len(self._queue)
            self._queue.clear()
            final = self._final = self._final or self.kind == "stdout"
            if not final:
                cfg = self._cfg
                delay = cfg.reconnect_min_s * 2 ** min(self._failures - 1, 30)
                self._retry_at = now + min(cfg.reconnect_max_s, delay)
            new = self._lost_at is None
            if new:
                self._lost_at = now
        if new:
            then = "the recording goes on without it" if final else "reconnecting"
            _note(f"veil: stream out lost ({reason}); {then}")
            self._report("output_lost", NAME, reason)
        if not final and self._spare is None:
            try:
                self._spare = self._spawn()
            except Lost:
                pass  # spawned at the next try instead

    def _finish_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close(time.monotonic() + 1.0)
        with self._cond:
            self._connected_at = None

    def _shut(self) -> None:
        """The thread's end: finish the connection by the close deadline, drop the spare."""
        link, self._link = self._link, None
        cutoff = (self._cutoff or time.monotonic()) + (CLOSE_SECONDS - DRAIN_SECONDS) - 0.2
        if link is not None:
            link.close(cutoff)
        if self._spare is not None:
            self._spare.kill()  # it has no connection: nothing to finish
            self._spare = None
        with self._cond:
            self._dropped += self._unconfirmed + len(self._queue)
            self._unconfirmed = 0
            self._queue.clear()
            self._connected_at = None


def _note(line: str) -> None:
    """One line for whoever watches the run (never the URL); a closed stderr is no failure."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
