"""FAKE picamera2.picamera2.Picamera2: a Raspberry Pi camera for machines that have none.

Shaped after the real class (raspberrypi/picamera2): `create_video_configuration` returns the same
kind of dict, `configure` fills in each stream's stride, `start` sets a camera thread running that
exposes a frame every 1 / FrameRate seconds whether or not anyone keeps up, `pre_callback` sees each
frame on that thread before anything else does, and `capture_request` hands out the newest
completed request. Like the real one it keeps at most one completed request waiting: an older one
goes back to the camera unseen, and the fake counts it in `frames_skipped`, as it counts exposures
missed because no buffer was free (every buffer held by requests nobody released) or because the
camera thread itself was late (a slow `pre_callback`).

Environment, read when a camera is opened:
  VEIL_FAKE_PICAMERA2_VIDEO=PATH     what the camera sees (else a generated test card)
  VEIL_FAKE_PICAMERA2_ABSENT=1       no camera attached: Picamera2() raises IndexError
  VEIL_FAKE_PICAMERA2_FAIL_AFTER=N   after N requests handed out, the camera fails ...
  VEIL_FAKE_PICAMERA2_FAIL=error     ... capture_request raises RuntimeError (the default), or
  VEIL_FAKE_PICAMERA2_FAIL=stall     ... the camera stops delivering (a loose ribbon cable)
  VEIL_FAKE_PICAMERA2_CLOCK=monotonic|boottime|realtime   the clock SensorTimestamp counts on
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

import cv2
import numpy as np

from picamera2.request import (
    RGB_FORMATS,
    YUV_FORMATS,
    CompletedRequest,
    FrameBuffer,
    frame_size,
    shaped,
    stride_for,
)
from picamera2.scene import Scene, open_scene

# Fake-only: every camera this process opened, newest last, for tests to inspect.
FAKE_OPENED: list[Picamera2] = []
_IN_USE: set[int] = set()  # camera numbers currently open (libcamera lets one process at a time)
_CLOCKS = {
    "monotonic": time.CLOCK_MONOTONIC,
    "boottime": time.CLOCK_BOOTTIME,
    "realtime": time.CLOCK_REALTIME,
}


class Picamera2:
    """FAKE of picamera2.Picamera2 (one camera, video use)."""

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        """The attached cameras, as the real static method lists them: none when ABSENT."""
        cameras = 0 if os.environ.get("VEIL_FAKE_PICAMERA2_ABSENT") == "1" else 1
        return [{"Model": "fake-imx708", "Num": n} for n in range(cameras)]

    def __init__(self, camera_num: int = 0, **_: Any) -> None:
        self.is_open = False
        # The real one looks the number up in global_camera_info(): an IndexError if absent.
        info = self.global_camera_info()
        self.camera_idx = int(info[camera_num]["Num"])
        if self.camera_idx in _IN_USE:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self._video = os.environ.get("VEIL_FAKE_PICAMERA2_VIDEO") or None
        fail_after = os.environ.get("VEIL_FAKE_PICAMERA2_FAIL_AFTER")
        self._fail_after = int(fail_after) if fail_after else None
        self._fail_mode = os.environ.get("VEIL_FAKE_PICAMERA2_FAIL", "error")
        self._clock_id = _CLOCKS[os.environ.get("VEIL_FAKE_PICAMERA2_CLOCK", "monotonic")]
        _IN_USE.add(self.camera_idx)
        self.is_open = True
        self.request_lock = threading.Lock()
        self.lock = threading.Lock()  # the camera thread's, held around pre_callback
        self._cond = threading.Condition()
        self.pre_callback: Callable[[CompletedRequest], None] | None = None
        self.post_callback: Callable[[CompletedRequest], None] | None = None
        self.camera_config: dict[str, Any] = {}
        self.started = False
        self.stop_count = 0
        self._completed: deque[CompletedRequest] = deque()
        self._free: deque[FrameBuffer] = deque()
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._failed = False
        self._fps = 30.0
        self._buffers: list[FrameBuffer] = []
        # Counters for tests: frames exposed, requests handed out and released by the application,
        # frames skipped (never seen by it).
        self.frames_captured = 0
        self.requests_delivered = 0
        self.requests_released = 0
        self.frames_skipped = 0
        self.flushes = 0
        FAKE_OPENED.append(self)

    # -- configuration -------------------------------------------------------------------------

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 6,
        controls: dict[str, Any] | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
        sensor: dict[str, Any] | None = None,
        use_case: str = "video",
    ) -> dict[str, Any]:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main_cfg = _stream({"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True}, main)
        assert main_cfg is not None
        lores_cfg = _stream({"format": "YUV420", "size": main_cfg["size"]}, lores)
        hd = main_cfg["size"][0] >= 1280 and main_cfg["size"][1] >= 720
        return {
            "use_case": use_case,
            "transform": transform,
            "colour_space": colour_space or ("Rec709" if hd else "Smpte170m"),
            "buffer_count": buffer_count,
            "queue": queue,
            "main": main_cfg,
            "lores": lores_cfg,
            "raw": None,  # the fake has no raw (Bayer) stream
            "controls": {"FrameDurationLimits": (33333, 33333)} | (controls or {}),
            "sensor": sensor or {},
            "display": display,
            "encode": encode,
        }

    def configure(self, camera_config: dict[str, Any]) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in camera_config.items()}
        _check(config["main"], "main", RGB_FORMATS)
        if config.get("lores") is not None:
            _check(config["lores"], "lores", YUV_FORMATS)
            (mw, mh), (lw, lh) = config["main"]["size"], config["lores"]["size"]
            if lw > mw or lh > mh:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
        streams = [n for n in ("main", "lores") if config.get(n) is not None]
        for name in streams:
            stream = config[name]
            minimum = stride_for(stream["format"], stream["size"][0])
            stream["stride"] = max(int(stream.get("stride") or 0), minimum)
            stream["framesize"] = frame_size(stream["format"], stream["size"], stream["stride"])
        self.camera_config = config
        self._fps = _frame_rate(config["controls"])
        self._buffers = [
            FrameBuffer({n: np.zeros(config[n]["framesize"], np.uint8) for n in streams})
            for _ in range(int(config["buffer_count"]))
        ]

    def camera_configuration(self) -> dict[str, Any]:
        return self.camera_config

    # -- running -------------------------------------------------------------------------------

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        if config is not None:
            self.configure(config)
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        if self.started:
            return
        self._free = deque(b for b in self._buffers if not b.held)
        self._halt.clear()
        self.started = True
        scene = open_scene(self._video, *self.camera_config["main"]["size"], self._fps)
        self._thread = threading.Thread(
            target=self._run, args=(scene,), name="fake-picamera2", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if not self.started:
            return
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        with self._cond:
            self.started = False
            self.stop_count += 1
            waiting = list(self._completed)
            self._completed.clear()
            self._cond.notify_all()
        for request in waiting:
            request.release()

    def close(self) -> None:
        if not self.is_open:
            return
        self.stop()
        self.is_open = False
        _IN_USE.discard(self.camera_idx)

    def cancel_all_and_flush(self) -> None:
        """The real one cancels jobs left queued by a capture that timed out."""
        self.flushes += 1

    def capture_request(
        self, wait: bool | float | None = None, signal_function: Any = None, flush: Any = None
    ) -> CompletedRequest:
        if wait is False or signal_function is not None or flush is not None:
            raise NotImplementedError("fake picamera2: only blocking capture_request is faked")
        timeout = None if wait is None or wait is True else float(wait)
        with self._cond:
            if not self._cond.wait_for(lambda: self._completed or self._failed, timeout):
                raise FutureTimeout()
            if self._failed:
                raise RuntimeError("Camera frontend has timed out!")
            request = self._completed.popleft()
            request.delivered = True
            self.requests_delivered += 1
            if self._fail_after is not None and self.requests_delivered >= self._fail_after:
                self._fail_after = None  # fails once per opening, like an unplugged cable
                if self._fail_mode == "stall":
                    self._halt.set()
                else:
                    self._failed = True
        return request

    # -- the camera thread ---------------------------------------------------------------------

    def _run(self, scene: Scene) -> None:
        period = 1.0 / self._fps
        t0 = time.monotonic()
        exposure = 0
        try:
            while True:
                due = t0 + exposure * period
                if self._halt.wait(max(0.0, due - time.monotonic())):
                    return
                late = int((time.monotonic() - due) / period)
                if late > 0:  # the sensor does not wait for a late camera thread
                    with self._cond:
                        self.frames_skipped += late
                    exposure += late
                self._expose(scene, exposure, t0 + exposure * period)
                exposure += 1
        finally:
            scene.close()

    def _expose(self, scene: Scene, exposure: int, start: float) -> None:
        """Exposure number `exposure`, begun at `start` (time.monotonic())."""
        with self._cond:
            self.frames_captured += 1
            if not self._free:
                self.frames_skipped += 1  # every buffer is held by the application
                return
            buffer = self._free.popleft()
            buffer.held = True
        self._fill(buffer, scene.frame(exposure))
        # SensorTimestamp: when the exposure began, on the clock the fake was told to use.
        since = time.monotonic_ns() - round(start * 1e9)
        stamp = time.clock_gettime_ns(self._clock_id) - since
        metadata = {
            "SensorTimestamp": stamp,
            "FrameDuration": round(1e6 / self._fps),
            "ExposureTime": round(0.8e6 / self._fps),
            "AnalogueGain": 2.0,
            "DigitalGain": 1.0,
        }
        request = CompletedRequest(self, buffer, metadata, self.stop_count)
        with self.lock:
            if self.pre_callback is not None:
                self.pre_callback(request)
        stale: list[CompletedRequest] = []
        with self._cond:
            self._completed.append(request)
            while len(self._completed) > 1:  # keep only the newest waiting, as the real one
                stale.append(self._completed.popleft())
                self.frames_skipped += 1
            self._cond.notify_all()
        for old in stale:
            old.release()

    def _fill(self, buffer: FrameBuffer, picture: np.ndarray) -> None:
        """Write one exposure into the buffer the way the ISP would: main as B,G,R bytes, lores
        downscaled and as planar YUV 4:2:0 rows of `stride` (Y) and `stride // 2` (U, V)."""
        main_cfg = self.camera_config["main"]
        main = shaped(buffer.planes["main"], main_cfg)
        main[...] = picture if main_cfg["format"] == "RGB888" else picture[..., ::-1]
        lores_cfg = self.camera_config.get("lores")
        if lores_cfg is None:
            return
        (w, h), stride = lores_cfg["size"], lores_cfg["stride"]
        small = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)
        i420 = cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420).reshape(-1)
        flat = buffer.planes["lores"]
        flat.reshape(h * 3 // 2, stride)[:h, :w] = i420[: w * h].reshape(h, w)
        chroma = (h // 2) * (stride // 2)
        for k in range(2):
            plane = flat[h * stride + k * chroma : h * stride + (k + 1) * chroma]
            start = w * h + k * (w // 2) * (h // 2)
            part = i420[start : start + (w // 2) * (h // 2)]
            plane.reshape(h // 2, stride // 2)[:, : w // 2] = part.reshape(h // 2, w // 2)

    def _recycle(self, buffer: FrameBuffer, delivered: bool) -> None:
        with self._cond:
            buffer.held = False
            self.requests_released += delivered  # the application's releases, not the camera's
            if self.started:
                self._free.append(buffer)


def _stream(default: dict[str, Any], updates: dict[str, Any] | None) -> dict[str, Any] | None:
    if updates is None:
        return None
    valid = ("format", "size", "stride", "preserve_ar")
    for key in updates:
        if key not in valid:
            raise ValueError(f"Bad key {key!r}: valid stream configuration keys are {valid}")
    config = default | updates
    w, h = config["size"]
    config["size"] = (w - w % 2, h - h % 2)  # align_stream(optimal=False), as the real one
    return config


def _check(stream: dict[str, Any], name: str, faked: tuple[str, ...]) -> None:
    size = stream["size"]
    if type(size) is not tuple or len(size) != 2:
        raise RuntimeError(f"size in {name} stream should be (width, height)")
    if size[0] % 2 or size[1] % 2:
        raise RuntimeError("width and height should be even")
    if stream["format"] not in faked:
        raise RuntimeError(f"fake picamera2: {name} format {stream['format']!r} is not faked")


def _frame_rate(controls: dict[str, Any]) -> float:
    if "FrameRate" in controls:
        return float(controls["FrameRate"])
    shortest = controls.get("FrameDurationLimits", (33333, 33333))[0]
    return 1e6 / float(shortest)
