"""Local cameras through OpenCV's capture: V4L2 (USB and UVC cameras) and GStreamer pipelines
(Jetson CSI cameras).

`v4l2:/dev/video0` asks the camera for MJPG at [live] width, height and fps: most USB cameras
deliver their larger sizes at full rate only as MJPG (raw YUYV is limited by USB 2 bandwidth),
and OpenCV decodes it to BGR. The camera may offer something else; what it gave is read back.

`gst:PIPELINE` hands the pipeline to OpenCV's GStreamer backend; it must end in an appsink that
receives BGR. On a Jetson, a CSI camera through the ISP (nvarguscamerasrc), converted by the
VIC (nvvidconv) and keeping only the newest frame (one line after `gst:`):

    nvarguscamerasrc sensor-id=0
    ! video/x-raw(memory:NVMM),width=1280,height=720,format=NV12,framerate=30/1
    ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR
    ! appsink drop=true max-buffers=1

pip's opencv-python(-headless) wheels are built without GStreamer; JetPack's own OpenCV has it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.capture.live import RunClock, SourceLost
from edge.capture.urls import gst_label
from edge.config import LiveConfig
from edge.errors import UsageError
from edge.frames import Pixels, RawFrame

log = logging.getLogger(__name__)

NO_GSTREAMER = (
    "gst: sources need OpenCV built with GStreamer, and pip's opencv-python(-headless) wheels "
    "are built without it; on a Jetson use JetPack's OpenCV (apt install nvidia-opencv): make "
    "the venv with `python3 -m venv --system-site-packages`, then `pip uninstall "
    "opencv-python-headless opencv-python` in it"
)


class _OpenCVCamera:
    """What V4L2 and GStreamer capture share: the first frame, the frame loop, BGR output."""

    live = True
    kind = "camera"
    label = "camera"

    def __init__(self, cap: Any, clock: RunClock) -> None:
        self._cap = cap
        self._clock = clock
        # A camera that opens but never delivers (busy, wrong format, no sensor) is not open.
        ok, first = cap.read()
        if not ok or first is None:
            self.close()
            raise SourceLost(f"{self.label}: opened, but delivers no frames", "open-failed")
        self._first: tuple[Pixels, float] | None = (_bgr(first), time.monotonic())
        self.height, self.width = self._first[0].shape[:2]
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.rate: Fraction | None = (
            Fraction(fps).limit_denominator(1001) if 0 < fps <= 240 else None
        )

    def frames(self) -> Iterator[RawFrame]:
        index = 0
        while not self._clock.stop.is_set():
            if self._first is not None:
                pixels, captured = self._first
                self._first = None
            else:
                ok, raw = self._cap.read()
                captured = time.monotonic()
                if not ok or raw is None:  # unplugged, or the pipeline stopped
                    raise SourceLost(f"{self.label}: the camera stopped delivering", "read-error")
                pixels = _bgr(raw)
            yield self._clock.frame(pixels, index, captured)
            index += 1

    def close(self) -> None:
        self._cap.release()


class V4L2Source(_OpenCVCamera):
    kind = "v4l2"

    def __init__(self, device: str, cfg: LiveConfig, clock: RunClock) -> None:
        self.label = f"v4l2:{device}"
        # OpenCV waits 10 s by default for each frame of a stalled camera before it gives up; it
        # reads this once per process, at the first capture, so a value set by the user wins.
        os.environ.setdefault("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(math.ceil(cfg.timeout_s)))
        cap = cv2.VideoCapture(_v4l2_target(device, self.label), cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise SourceLost(f"{self.label}: cannot open the camera", "open-failed")
        # The format first: which sizes and rates a camera offers depends on it.
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        super().__init__(cap, clock)
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace")
        log.info(
            "%s: %dx%d at %s fps as %s (asked for %dx%d at %g fps, MJPG)",
            self.label,
            self.width,
            self.height,
            f"{float(self.rate):g}" if self.rate else "?",
            fourcc,
            cfg.width,
            cfg.height,
            cfg.fps,
        )


class GStreamerSource(_OpenCVCamera):
    kind = "gst"

    def __init__(self, pipeline: str, cfg: LiveConfig, clock: RunClock) -> None:
        self.label = gst_label(pipeline)
        if not has_gstreamer():
            raise UsageError(NO_GSTREAMER)  # a missing backend will not come back by retrying
        cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise SourceLost(f"{self.label}: the pipeline does not start", "open-failed")
        # OpenCV >= 4.7 can give up on a stalled pipeline; older builds lack the property.
        read_timeout = getattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC", None)
        if read_timeout is not None:
            cap.set(read_timeout, cfg.timeout_s * 1000)
        super().__init__(cap, clock)


def has_gstreamer() -> bool:
    """Whether this OpenCV was built with its GStreamer backend (its build report says so)."""
    match = re.search(r"^\s*GStreamer:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is not None and match.group(1).upper() != "NO"


def _v4l2_target(device: str, label: str) -> int | str:
    """The camera number OpenCV opens for `device` (/dev/videoN, a /dev/v4l/by-id link, or N),
    or the path itself for a device node named otherwise."""
    if device.isdigit():
        return int(device)
    path = Path(device)
    if not path.exists():
        raise SourceLost(f"{label}: no such device", "open-failed")
    # Recent OpenCV opens V4L2 cameras by number only; stable by-id/by-path names are links.
    found = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(path))
    return int(found.group(1)) if found else str(path)


def _bgr(raw: Any) -> Pixels:
    """OpenCV's frame as BGR uint8 HxWx3, whatever the pipeline's caps left it as."""
    pixels = np.asarray(raw)
    if pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    elif pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(pixels, dtype=np.uint8)
