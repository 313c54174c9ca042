"""The preview's picture: the newest redacted frame, scaled down and JPEG-encoded on a thread of
its own, at most `fps` times a second and only while somebody watches.

`offer` swaps one reference under a lock and returns, so the frame loop never waits for the
preview. Every viewer takes the newest JPEG when it is ready for one: a slow viewer skips
frames, it is never handed a backlog, and it never holds up the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from edge.config import PreviewConfig
from edge.frames import Pixels, RedactedFrame
from edge.sinks.nice import below_the_loop

Jpeg = tuple[int, int, bytes]  # (seq, frame index, JPEG bytes); seq counts encodes from 1


def scaled(pixels: Pixels, long_side: int) -> Pixels:
    """The picture with its long side at most `long_side`; never enlarged."""
    height, width = pixels.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def encode(pixels: Pixels, cfg: PreviewConfig) -> bytes | None:
    ok, buffer = cv2.imencode(
        ".jpg", scaled(pixels, cfg.long_side), [cv2.IMWRITE_JPEG_QUALITY, cfg.quality]
    )
    return bytes(np.asarray(buffer).tobytes()) if ok else None


class JpegFeed:
    """The newest frame in, the newest JPEG out. Thread-safe; `start` runs the encoder."""

    def __init__(self, cfg: PreviewConfig) -> None:
        self._cfg = cfg
        self._cond = threading.Condition()
        self._latest: RedactedFrame | None = None
        self._fresh = False  # _latest arrived after the last encode
        self._watchers = 0
        self._published: Jpeg | None = None
        self._seq = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.offered = 0
        self.encoded = 0

    @property
    def watchers(self) -> int:
        return self._watchers

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="veil-preview-jpeg", daemon=True)
            self._thread.start()

    def offer(self, frame: RedactedFrame) -> None:
        with self._cond:
            self._latest = frame
            self._fresh = True
            self.offered += 1

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Count one viewer while the block runs. The first viewer after none never sees a JPEG
        made for an earlier one: the picture shown is at most one period older than the newest
        frame."""
        with self._cond:
            if self._watchers == 0:
                self._published = None
                self._fresh = self._latest is not None
            self._watchers += 1
        try:
            yield
        finally:
            with self._cond:
                self._watchers -= 1

    def wait_next(self, after_seq: int, timeout: float) -> Jpeg | None:
        """The newest JPEG once there is one newer than `after_seq`; None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._is_ready(after_seq), timeout)
            published = self._published
            if self._closed or published is None or published[0] <= after_seq:
                return None
            return published

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(2.0)

    def _is_ready(self, after_seq: int) -> bool:
        published = self._published
        return self._closed or (published is not None and published[0] > after_seq)

    def _run(self) -> None:
        below_the_loop()
        period = 1.0 / self._cfg.fps
        due = time.monotonic()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed, max(0.0, due - time.monotonic()))
                if self._closed:
                    return
                frame = self._latest if self._fresh and self._watchers else None
                self._fresh = self._fresh and frame is None
            # The next tick on the period's grid, or now when an encode ran past it.
            due = max(due + period, time.monotonic())
            if frame is None:
                continue
            jpeg = encode(frame.pixels, self._cfg)
            if jpeg is None:
                continue
            with self._cond:
                self._seq += 1
                self._published = (self._seq, frame.index, jpeg)
                self.encoded += 1
                self._cond.notify_all()
