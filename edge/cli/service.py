"""`veil run` under systemd (`Type=notify`, `WatchdogSec=`): readiness, watchdog and stop.

Without `$NOTIFY_SOCKET` nothing here does anything, so a run from a shell is unchanged.

READY=1 means "recording": it is sent once, when the first frame has been written, not when the
process starts, so `systemctl start veil` returns only once the camera is really being recorded
(a camera absent at boot keeps the unit "activating" until `TimeoutStartSec=`, then systemd
restarts it). The watchdog's progress is the frames the loop takes in plus the source's reopen
attempts: a camera that Veil's own backoff is reopening is not a hang and must not get the
service killed, but a loop that takes in nothing and tries nothing is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from edge.config import LiveConfig
from edge.run import Notifier, RunReport, StatusBoard, Watchdog, recording_status, watchdog_interval


def stall_after(interval_s: float | None, live: LiveConfig) -> float:
    """How long without progress is a hang: at least one watchdog interval, and longer than the
    longest quiet gap of a reconnecting source (the backoff's wait, then an open that may take
    its timeout), so that only a loop that stopped trying loses its pings."""
    return max(interval_s or 0.0, live.reconnect_max_s + 2 * live.timeout_s)


@contextmanager
def supervised(
    report: RunReport, board: StatusBoard, live: LiveConfig
) -> Iterator[Callable[[], None] | None]:
    """Tell systemd about the run; yields the loop's per-frame callback (None off systemd)."""
    notifier = Notifier.from_env()
    if notifier is None:
        yield None
        return
    interval = watchdog_interval()
    ready = threading.Event()

    def progress() -> int:
        return report.frames_in + int(getattr(board.source_state, "attempts", 0))

    def status() -> str:
        return recording_status(report.frames_in, report.frames_out, report.dropped, dog.stalled)

    def on_frame() -> None:
        if not ready.is_set():
            ready.set()
            notifier.ready()
            notifier.status(status())  # at once: `systemctl status` shows the first frame

    dog = Watchdog(notifier, interval, progress, stall_s=stall_after(interval, live), status=status)
    dog.start()
    try:
        yield on_frame
    finally:
        notifier.stopping()
        dog.stop()
        notifier.status(status().replace("recording", "stopped", 1))
        notifier.close()
