"""The H.264 stream every encoded output shares (the recording's segments, the stream out), and
the BGR to YUV step in front of it.

One place for the encoder's settings, so that the recording and the stream out cannot drift
apart: what a reader of either sees at a keyframe, and how odd-sized frames are kept whole."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from edge.frames import Pixels


def pix_fmt_for(width: int, height: int) -> str:
    """4:2:0 needs even sizes; odd-sized frames keep their size in 4:4:4 instead."""
    return "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


def add_h264_stream(
    container: Any,
    *,
    width: int,
    height: int,
    rate: Fraction,
    time_base: Fraction,
    crf: int,
    preset: str,
    keyint: int,
) -> Any:
    """A libx264 stream on `container` that emits each frame's packet as the frame goes in (no
    lookahead, no B-frames) and a keyframe exactly every `keyint` frames: a fragment boundary
    for the recording, the first picture a new reader of the stream out can show."""
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = pix_fmt_for(width, height)
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    keyint = max(1, keyint)
    stream.options = {
        "crf": str(crf),
        "preset": preset,
        "tune": "zerolatency",
        "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0",
    }
    return stream


def i420(pixels: Pixels) -> NDArray[np.uint8]:
    """BGR (even sizes) as planar 4:2:0, shape (H * 3 / 2, W): OpenCV's SIMD conversion is about
    4x faster than swscale's from bgr24, and the encoder takes it as it is."""
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)


def video_frame(pixels: Pixels, pix_fmt: str | None) -> av.VideoFrame:
    """A frame for an encoder whose pixel format is `pix_fmt`: yuv420p through `i420`; any other
    format as bgr24, which PyAV's encoder converts itself."""
    if pix_fmt == "yuv420p":
        return av.VideoFrame.from_ndarray(i420(pixels), format="yuv420p")
    return av.VideoFrame.from_ndarray(pixels, format="bgr24")
