"""Against real cameras, on the device: deselected by default (`-m hardware` selects them).

    .venv/bin/python -m pytest -m hardware                       # a Pi camera on picamera2
    VEIL_TEST_V4L2=/dev/video0 .venv/bin/python -m pytest -m hardware
    VEIL_TEST_GST='nvarguscamerasrc ! ... ! appsink' .venv/bin/python -m pytest -m hardware

Each test reads a second of frames through the same source `veil run` uses, and checks their
size, order and timing. The fake picamera2 in tests/fakes must not be on the path here.
"""

from __future__ import annotations

import os
from itertools import islice

import numpy as np
import pytest

from edge.capture.live import LiveSource, RunClock
from edge.config import LiveConfig
from edge.frames import RawFrame

pytestmark = pytest.mark.hardware


def _second(source: LiveSource) -> list[RawFrame]:
    try:
        return list(islice(source.frames(), 30))
    finally:
        source.close()


def _check(frames: list[RawFrame], cfg: LiveConfig) -> None:
    assert len(frames) == 30
    assert all(f.pixels.dtype == np.uint8 and f.pixels.ndim == 3 for f in frames)
    pts = [f.pts or 0 for f in frames]
    assert pts == sorted(set(pts)), "times must strictly increase"
    seconds = float((pts[-1] - pts[0]) * frames[0].time_base) if frames[0].time_base else 0.0
    assert 0.5 * 29 / cfg.fps < seconds < 3.0 * 29 / cfg.fps


def test_picamera2_main_and_lores_from_the_real_camera() -> None:
    picamera2 = pytest.importorskip("picamera2")
    assert "fakes" not in (picamera2.__file__ or ""), "the fake picamera2 is on the path"
    from edge.capture.picamera2_source import Picamera2Source

    cfg = LiveConfig()
    frames = _second(Picamera2Source(0, cfg, RunClock()))
    _check(frames, cfg)
    assert frames[0].pixels.shape == (cfg.height, cfg.width, 3)
    assert frames[0].lores is not None and frames[0].lores.shape[1] <= cfg.lores_width


@pytest.mark.skipif("VEIL_TEST_V4L2" not in os.environ, reason="set VEIL_TEST_V4L2=/dev/videoN")
def test_v4l2_camera() -> None:
    from edge.capture.opencv_camera import V4L2Source

    cfg = LiveConfig()
    _check(_second(V4L2Source(os.environ["VEIL_TEST_V4L2"], cfg, RunClock())), cfg)


@pytest.mark.skipif("VEIL_TEST_GST" not in os.environ, reason="set VEIL_TEST_GST=PIPELINE")
def test_gstreamer_camera() -> None:
    from edge.capture.opencv_camera import GStreamerSource

    cfg = LiveConfig()
    _check(_second(GStreamerSource(os.environ["VEIL_TEST_GST"], cfg, RunClock())), cfg)
