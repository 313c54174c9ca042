"""A camera or stream that comes back: reopen a lost source with exponential backoff.

Only `SourceLost` is retried (unplugged, refused, timed out, end of stream). Anything else from
the opener (a missing library, a bad spec) is not going to get better and ends the run. Every
loss and every return is reported to `SourceEvents` (the audit log and the status), and the
frames of the new connection keep the run's clock, so an outage shows as a gap in frame times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from fractions import Fraction

from edge.capture.live import LiveSource, RunClock, SourceEvents, SourceLost
from edge.config import LiveConfig
from edge.frames import RawFrame


class Reconnecting:
    live = True

    def __init__(
        self,
        opener: Callable[[], LiveSource],
        kind: str,
        label: str,
        cfg: LiveConfig,
        clock: RunClock,
        events: SourceEvents,
    ) -> None:
        self.kind = kind
        self.label = label
        self._opener = opener
        self._cfg = cfg
        self._clock = clock
        self._events = events
        self._current: LiveSource | None = None
        self.width = self.height = 0
        self.rate: Fraction | None = None
        self.connected = False
        self.losses = 0
        # Why it is not delivering, in words and without credentials (the last failure's
        # message); None while it is. For the status and the lines a person reads.
        self.problem: str | None = None
        # Every try to open, over the run: the service watchdog counts them as progress, so a
        # camera being reopened with backoff is not mistaken for a hung loop (edge/run/notify.py).
        self.attempts = 0
        self._index = 0
        self._skipped_before = 0  # by sources closed since

    @property
    def skipped(self) -> int:
        """Frames the camera made that never reached Veil, over every connection."""
        current = self._current
        return self._skipped_before + int(getattr(current, "skipped", 0) if current else 0)

    def _open(self, lost_at: float | None) -> LiveSource | None:
        """Open the source, retrying with backoff; None once the run is stopping. `lost_at` is
        when it was lost (None at the start of the run)."""
        wait = self._cfg.reconnect_min_s
        attempts = 0
        while not self._clock.stop.is_set():
            attempts += 1
            self.attempts += 1
            try:
                source = self._opener()
            except SourceLost as exc:
                self.problem = str(exc)
                if lost_at is None:  # not there at start: a loss too (plugged in later)
                    lost_at = time.monotonic()
                    self.losses += 1
                    self._events.source_lost(self.kind, exc.reason)
                if self._clock.stop.wait(wait):
                    return None
                wait = min(wait * 2, self._cfg.reconnect_max_s)
                continue
            if lost_at is not None:
                self._events.source_restored(self.kind, time.monotonic() - lost_at, attempts)
            self.width, self.height, self.rate = source.width, source.height, source.rate
            self.connected, self.problem = True, None
            return source
        return None

    def frames(self) -> Iterator[RawFrame]:
        lost_at: float | None = None
        while not self._clock.stop.is_set():
            source = self._open(lost_at)
            if source is None:
                return
            self._current = source
            try:
                for raw in source.frames():
                    raw.index = self._index
                    self._index += 1
                    yield raw
                reason = "eof"  # a camera or stream that ends has been lost
                self.problem = f"{self.label}: the stream ended"
            except SourceLost as exc:
                reason, self.problem = exc.reason, str(exc)
            finally:
                self._skipped_before += int(getattr(source, "skipped", 0))
                self._current = None
                source.close()
            if self._clock.stop.is_set():
                return
            self.connected = False
            self.losses += 1
            lost_at = time.monotonic()
            self._events.source_lost(self.kind, reason)

    def close(self) -> None:
        current = self._current
        if current is not None:
            current.close()
