"""The preview client of `veil bench --live --preview-client`: one reader of the page's MJPEG
picture, as fast as it can take it or at 1 KB/s (a phone on a bad link), so that the bench can
show what a watcher costs the frame loop."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path

from edge.sinks.preview import load_or_create_token

_SLOW_CHUNK = 100  # bytes per read, every 0.1 s: 1 KB/s
_START_S = 120.0  # how long `veil run` may take to load its models and open the preview


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PreviewClient:
    """Reads http://127.0.0.1:PORT/stream.mjpg with the token from `key_dir` on its own thread,
    from when the preview answers until `stop()`; `received` counts the bytes."""

    def __init__(self, port: int, key_dir: Path, *, slow: bool) -> None:
        self.port, self.slow = port, slow
        # Made here if `veil run` has not made it yet: both make it the same way, once.
        self._token = load_or_create_token(key_dir)[0]
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="veil-bench-client", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        deadline = time.monotonic() + _START_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self._read()
                return
            except OSError:
                self._stop.wait(0.2)  # not listening yet, or gone at the run's end

    def _read(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/stream.mjpg", headers={"Authorization": f"Bearer {self._token}"})
            response = conn.getresponse()
            if response.status != 200:
                raise OSError(f"preview answered {response.status}")
            while not self._stop.is_set():
                chunk = response.read1(_SLOW_CHUNK if self.slow else 65536)
                if not chunk:
                    return
                self.received += len(chunk)
                if self.slow:
                    self._stop.wait(0.1)
        finally:
            conn.close()
