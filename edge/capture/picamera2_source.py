"""Raspberry Pi cameras through picamera2 (libcamera): Veil pulls every frame into its own loop.

picamera2 could hand each frame to a `pre_callback` on its camera thread (where its encoders would
then see only redacted pixels), but Veil pulls instead, with `capture_request()`: every source
then feeds the one frame loop (vouching window, deadlines, drops counted at capture, segment
sink), the camera thread never waits for the detector (picamera2 silently drops frames while a
callback is slow), and no pixel, redacted or not, ever reaches a picamera2 encoder or output. The
price is one copy of each stream out of the camera's buffer before it is released.

Two streams of the same exposure come back: `main` (RGB888, whose bytes are already in OpenCV's
B, G, R order) becomes `RawFrame.pixels`; `lores` (YUV420, the ISP's own downscale, same aspect
ratio) becomes `RawFrame.lores`, the picture the detector runs on.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from edge.capture.live import RunClock, SourceLost
from edge.config import LiveConfig
from edge.errors import UsageError
from edge.frames import Pixels, RawFrame

INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2`, "
    "and make Veil's venv with `python3 -m venv --system-site-packages` so that it sees it"
)
# picamera2's own default for video. Veil holds one buffer at a time, and only while it copies,
# so the rest stay with the camera and it never stalls for want of one.
BUFFERS = 6
# The widest alignment picamera2 asks of a YUV420 stream (Pi 5's PiSP: 64-byte chroma rows, so
# 128 pixels; a Pi 4's VC4 needs half that): an aligned lores has no row padding to crop.
LORES_ALIGN = 128
READ_TIMEOUT_S = 2.0  # no frame for this long: the camera is gone (ribbon cable, driver)
_MAX_AGE_NS = 2_000_000_000  # a SensorTimestamp older than this is not on the clock we tried

Clock = Callable[[], int]


def lores_size(width: int, height: int, lores_width: int) -> tuple[int, int]:
    """The detector's stream: `lores_width` wide (aligned down, at most `width`), main's aspect
    ratio, both sides even as libcamera requires."""
    lw = min(lores_width, width)
    lw = lw - lw % LORES_ALIGN if lw >= LORES_ALIGN else lw - lw % 2
    lh = max(2, round(lw * height / width / 2) * 2)
    return lw, min(lh, height - height % 2)


def yuv420_to_bgr(planes: Pixels, width: int, height: int) -> Pixels:
    """BGR from picamera2's YUV420 array, (height * 3 // 2, stride): Y rows of `stride` bytes,
    then U and V rows of `stride // 2`. Rows padded past the picture are cropped plane by plane
    (cropping the whole array to `width` columns would mix up the chroma rows)."""
    stride = int(planes.shape[1])
    if stride != width:
        planes = _unpadded(planes.reshape(-1), width, height, stride)
    # OpenCV converts with BT.601 coefficients; the camera's Rec.709 lores differs slightly in
    # hue, which the detector does not mind. Only the detector ever sees this picture.
    return np.asarray(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)


def _unpadded(flat: Pixels, width: int, height: int, stride: int) -> Pixels:
    """The three planes packed without row padding, as OpenCV's I420 wants them."""
    out = np.empty(width * height * 3 // 2, np.uint8)
    rows = [(0, 0, height, width, stride)]  # (from, to, rows, width, stride) of Y, U, V
    chroma_in, chroma_out = (height // 2) * (stride // 2), (height // 2) * (width // 2)
    for k in range(2):
        start_in, start_out = height * stride + k * chroma_in, width * height + k * chroma_out
        rows.append((start_in, start_out, height // 2, width // 2, stride // 2))
    for start_in, start_out, n, w, s in rows:
        source = flat[start_in : start_in + n * s].reshape(n, s)
        out[start_out : start_out + n * w].reshape(n, w)[:] = source[:, :w]
    return out.reshape(height * 3 // 2, width)


class SensorClock:
    """When a frame was exposed, on `time.monotonic()`'s clock.

    libcamera documents SensorTimestamp as CLOCK_BOOTTIME, yet picamera2 compares it with
    CLOCK_MONOTONIC (the two differ only by time spent suspended). The first frame shows which
    one this camera uses; a timestamp on neither falls back to the time the frame arrived.
    """

    def __init__(
        self,
        monotonic_ns: Clock = time.monotonic_ns,
        boottime_ns: Clock = lambda: time.clock_gettime_ns(time.CLOCK_BOOTTIME),
    ) -> None:
        self._monotonic_ns = monotonic_ns
        self._boottime_ns = boottime_ns
        self.basis: str | None = None  # "monotonic", "boottime" or "arrival", once decided

    def captured(self, sensor_ns: Any) -> float:
        now = self._monotonic_ns()
        if not isinstance(sensor_ns, int) or sensor_ns <= 0:
            return now / 1e9
        if self.basis is None:
            self.basis = self._decide(sensor_ns, now)
        if self.basis == "monotonic":
            return min(sensor_ns, now) / 1e9
        if self.basis == "boottime":
            age = self._boottime_ns() - sensor_ns
            return (now - min(max(age, 0), _MAX_AGE_NS)) / 1e9
        return now / 1e9

    def _decide(self, sensor_ns: int, now: int) -> str:
        if 0 <= now - sensor_ns <= _MAX_AGE_NS:
            return "monotonic"
        if 0 <= self._boottime_ns() - sensor_ns <= _MAX_AGE_NS:
            return "boottime"
        return "arrival"


def _library() -> Any:
    try:
        # import_module rather than an import statement: picamera2 ships no type information,
        # and comes from the system's packages on a Pi, not from Veil's dependencies.
        return importlib.import_module("picamera2")
    except ImportError:
        raise UsageError(INSTALL_HINT) from None


class Picamera2Source:
    kind = "picamera2"
    live = True

    def __init__(
        self,
        camera: int,
        cfg: LiveConfig,
        clock: RunClock,
        *,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.label = f"picamera2:{camera}"
        self.rate: Fraction | None = Fraction(cfg.fps).limit_denominator(1001)
        self._clock = clock
        self._timeout = read_timeout_s
        self._sensor_clock = SensorClock()
        self._closed = False
        # Exposures the camera made that never reached Veil (picamera2 keeps only the newest
        # completed frame waiting), counted from the gaps between sensor timestamps.
        self.skipped = 0
        self._last: float | None = None
        library = _library()
        try:
            self._cam: Any = library.Picamera2(camera)
        except (IndexError, RuntimeError) as exc:  # IndexError: no camera with that number
            raise SourceLost(
                f"{self.label}: no camera ({exc or type(exc).__name__})", "open-failed"
            ) from None
        try:
            self._start(cfg)
        except BaseException:
            self.close()
            raise

    def _start(self, cfg: LiveConfig) -> None:
        lores = lores_size(cfg.width, cfg.height, cfg.lores_width)
        try:
            config = self._cam.create_video_configuration(
                main={"size": (cfg.width, cfg.height), "format": "RGB888"},
                lores={"size": lores, "format": "YUV420"},
                controls={"FrameRate": cfg.fps},
                buffer_count=BUFFERS,
            )
            self._cam.configure(config)
            self._cam.start()
            final = self._cam.camera_configuration()  # libcamera may have adjusted the sizes
        except RuntimeError as exc:
            raise SourceLost(
                f"{self.label}: cannot start the camera ({exc})", "open-failed"
            ) from None
        self.width, self.height = (int(v) for v in final["main"]["size"])
        self.lores_width, self.lores_height = (int(v) for v in final["lores"]["size"])

    def frames(self) -> Iterator[RawFrame]:
        index = 0
        while not self._clock.stop.is_set():
            request = self._capture()
            if request is None:
                return
            try:
                main, yuv, captured = self._copy(request)
            finally:
                request.release()  # back to the camera at once: the rest works on the copies
            lores = yuv420_to_bgr(yuv, self.lores_width, self.lores_height)
            yield self._clock.frame(main, index, captured, lores=lores)
            index += 1

    def _capture(self) -> Any:
        """The next completed request; None if the source was closed meanwhile."""
        try:
            return self._cam.capture_request(wait=self._timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            if self._closed:
                return None
            try:  # else the timed-out capture stays queued and takes the next frame's buffer
                self._cam.cancel_all_and_flush()
            except Exception:  # the camera is being given up on: it is reopened from scratch
                pass
            raise SourceLost(f"{self.label}: no frame for {self._timeout:g} s", "timeout") from None
        except Exception as exc:  # picamera2 reports camera failures as plain exceptions
            if self._closed:
                return None
            raise SourceLost(f"{self.label}: capture failed ({exc})", "read-error") from None

    def _copy(self, request: Any) -> tuple[Pixels, Pixels, float]:
        """Main and lores copied out of the request's buffers, and when the frame was exposed."""
        try:
            metadata = request.get_metadata()
            captured = self._sensor_clock.captured(metadata.get("SensorTimestamp"))
            self._count_skipped(captured, metadata.get("FrameDuration"))
            main: Pixels = request.make_array("main")
            yuv: Pixels = request.make_array("lores")
        except RuntimeError as exc:
            raise SourceLost(f"{self.label}: frame unreadable ({exc})", "read-error") from None
        if main.shape != (self.height, self.width, 3) or yuv.shape[0] != self.lores_height * 3 // 2:
            raise SourceLost(f"{self.label}: frame of shape {main.shape} unexpected", "read-error")
        return main, yuv, captured

    def _count_skipped(self, captured: float, frame_us: Any) -> None:
        last, self._last = self._last, captured
        if last is None or self._sensor_clock.basis not in {"monotonic", "boottime"}:
            return  # arrival times jitter too much to count frames by
        if isinstance(frame_us, int | float) and frame_us > 0:
            self.skipped += max(0, round((captured - last) * 1e6 / frame_us) - 1)

    def close(self) -> None:
        """Stop and close the camera; safe to call twice, never raises (it runs on the way out
        of a failure)."""
        if self._closed:
            return
        self._closed = True
        cam = getattr(self, "_cam", None)
        for step in ("stop", "close"):
            try:
                getattr(cam, step)()
            except Exception:  # a camera that fails to stop or close is as closed as it gets
                pass
