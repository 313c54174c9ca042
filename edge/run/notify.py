"""The systemd notify protocol, spoken directly: readiness, status, watchdog and stop.

Under `Type=notify` systemd hands the service `$NOTIFY_SOCKET`, a datagram socket (a path, or
an abstract name written with a leading `@`); each message is one datagram of `KEY=value` lines.
That is the whole protocol, so no library is needed: a device image carries one dependency less.

Two rules hold everywhere here. A failed send never raises: the camera recording matters more
than telling systemd about it, and a lost watchdog ping only means systemd restarts the service.
And nothing sent can hold a URL, a path or a token: the journal keeps status lines, so status
text is counts only, built here from numbers.

`Watchdog` pings only while the frame loop makes progress, so that a loop that hangs (a stuck
driver, a deadlock) stops the pings and systemd kills and restarts the service (`WatchdogSec=`,
`Restart=on-failure`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

_TICK_S = 0.1  # how often the watchdog thread looks at the clock and the progress counter
STATUS_EVERY_S = 5.0  # a status line this often: enough for `systemctl status`, quiet in logs


def _address(name: str) -> str | bytes | None:
    """The socket address `$NOTIFY_SOCKET` names; None for anything not a path or `@name`."""
    if name.startswith("@") and len(name) > 1:
        return b"\0" + name[1:].encode("utf-8")  # Linux's abstract namespace
    if name.startswith("/"):
        return name
    return None


class Notifier:
    """One datagram socket to systemd; `send` is safe to call from any thread."""

    def __init__(self, address: str | bytes) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.sent = 0  # messages that reached the socket (for the tests and for nothing else)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier | None:
        """The notifier `$NOTIFY_SOCKET` asks for; None when unset (not under systemd)."""
        env = os.environ if environ is None else environ
        address = _address(env.get("NOTIFY_SOCKET", ""))
        return None if address is None else cls(address)

    def send(self, message: str) -> bool:
        """Send `message` as one datagram; False (never an exception) if it did not go."""
        data = message.encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(data, self.address)
            except OSError:
                return False
            self.sent += 1
            return True

    def ready(self) -> bool:
        return self.send("READY=1")

    def status(self, text: str) -> bool:
        """`STATUS=` with `text` on one line (a newline would start a new, forged, key)."""
        return self.send("STATUS=" + " ".join(text.split()))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """`WatchdogSec=` in seconds, from `$WATCHDOG_USEC`; None when there is no watchdog, or when
    `$WATCHDOG_PID` says it is another process's (a parent that ran us passed it down)."""
    env = os.environ if environ is None else environ
    owner = env.get("WATCHDOG_PID")
    if owner is not None and owner.strip() != str(os.getpid() if pid is None else pid):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


class Watchdog:
    """A daemon thread: `WATCHDOG=1` every `interval_s / 2` while `progress()` keeps changing,
    and a `STATUS=` line from `status()` every `status_every_s`.

    `progress` is a counter the frame loop advances (frames taken in, and reconnect attempts: a
    camera being reopened by Veil's own backoff is progress, not a hang). Once it has not
    changed for more than `stall_s` the pings stop, and systemd kills the service one watchdog
    interval later. With no `interval_s` (no `WatchdogSec=`) only the status lines are sent.
    """

    def __init__(
        self,
        notifier: Notifier,
        interval_s: float | None,
        progress: Callable[[], int],
        *,
        stall_s: float | None = None,
        status: Callable[[], str] | None = None,
        status_every_s: float = STATUS_EVERY_S,
    ) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self.progress = progress
        self.stall_s = stall_s if stall_s is not None else (interval_s or 0.0)
        self.status = status
        self.status_every_s = status_every_s
        self.stalled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="veil-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _loop(self) -> None:
        now = time.monotonic()
        last, changed_at = self._progress(), now
        next_ping, next_status = now, now
        tick = min(_TICK_S, self.interval_s / 4) if self.interval_s else _TICK_S
        while not self._stop.is_set():
            now = time.monotonic()
            value = self._progress()
            if value != last:
                last, changed_at = value, now
            self.stalled = now - changed_at > self.stall_s
            if self.interval_s and now >= next_ping:
                if not self.stalled:
                    self.notifier.watchdog()
                next_ping = now + self.interval_s / 2
            if self.status is not None and now >= next_status:
                self.notifier.status(self._status())
                next_status = now + self.status_every_s
            self._stop.wait(tick)

    def _progress(self) -> int:
        try:
            return int(self.progress())
        except Exception:  # a counter that fails is no progress: the pings stop, as for a hang
            return -1

    def _status(self) -> str:
        try:
            return self.status() if self.status is not None else ""
        except Exception:
            return "status unavailable"


def recording_status(frames_in: int, frames_out: int, dropped: int, stalled: bool) -> str:
    """The status line: counts only, so it can never carry a URL, a path or a key."""
    state = "stalled" if stalled else "recording"
    return f"{state}: {int(frames_in)} in, {int(frames_out)} out, {int(dropped)} dropped"
