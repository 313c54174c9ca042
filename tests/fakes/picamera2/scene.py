"""What the FAKE camera sees: a real video (VEIL_FAKE_PICAMERA2_VIDEO), else a generated picture.

The scene runs on the sensor's clock: exposure k at `fps` shows the video at time k / fps, so a
camera running at another rate than the video, or skipping exposures, still sees real time pass.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

Bgr = NDArray[np.uint8]


class VideoScene:
    """Frames of a video file, looped, resized to the sensor's output size."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        self._path = path
        self._size = (width, height)
        self._fps = fps
        self._cap = self._open()
        rate = float(self._cap.get(cv2.CAP_PROP_FPS))
        self._video_fps = rate if rate > 0 else 30.0
        self._next = 0  # index of the frame the decoder gives next
        self._loop_at: int | None = None  # frames in the file, once its end was seen

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self._path))
        if not cap.isOpened():
            raise ValueError(f"VEIL_FAKE_PICAMERA2_VIDEO: cannot read {self._path}")
        return cap

    def frame(self, exposure: int) -> Bgr:
        target = int(exposure * self._video_fps / self._fps)
        if self._loop_at:
            target %= self._loop_at
        if target < self._next:
            self._cap.release()
            self._cap, self._next = self._open(), 0
        while self._next < target:  # skipped exposures: the scene went on meanwhile
            if not self._cap.grab():
                return self._wrap(exposure)
            self._next += 1
        ok, picture = self._cap.read()
        if not ok:
            return self._wrap(exposure)
        self._next += 1
        if (picture.shape[1], picture.shape[0]) != self._size:
            picture = cv2.resize(picture, self._size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(picture)

    def _wrap(self, exposure: int) -> Bgr:
        if self._next == 0:
            raise ValueError(f"VEIL_FAKE_PICAMERA2_VIDEO: no frames in {self._path}")
        self._loop_at = self._next
        self._cap.release()
        self._cap, self._next = self._open(), 0
        return self.frame(exposure)

    def close(self) -> None:
        self._cap.release()


class GeneratedScene:
    """A test card with something moving on it, when no video is given. No faces."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self._size = (width, height)
        self._fps = fps
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        card = np.stack([np.broadcast_to(x, (height, width)), (x + y) / 2, 255 - y + 0 * x], -1)
        self._card = card.astype(np.uint8)
        for i in range(8):  # vertical bars give the picture edges to line up
            x0 = i * width // 8
            self._card[:, x0 : x0 + max(1, width // 64)] = (255 * (i % 2),) * 3

    def frame(self, exposure: int) -> Bgr:
        w, h = self._size
        t = exposure / self._fps
        picture = self._card.copy()
        cx = int(w / 2 + w / 3 * np.sin(t * 1.3))
        cy = int(h / 2 + h / 3 * np.cos(t * 0.9))
        cv2.circle(picture, (cx, cy), max(4, h // 8), (40, 220, 250), -1)
        return picture

    def close(self) -> None:
        pass


Scene = VideoScene | GeneratedScene


def open_scene(video: str | None, width: int, height: int, fps: float) -> Scene:
    if video:
        return VideoScene(Path(video), width, height, fps)
    return GeneratedScene(width, height, fps)
