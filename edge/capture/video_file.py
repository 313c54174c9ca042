"""Recorded video through PyAV (FFmpeg). Video stream only: audio and metadata are never read."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge.errors import MediaError
from edge.frames import Pixels, RawFrame


class VideoFileSource:
    kind = "video-file"

    def __init__(self, path: Path, *, threads: int = 0) -> None:
        self.path = path
        try:
            self._container: Any = av.open(str(path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(f"{path}: not a readable video ({_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = threads
        ctx = self._stream.codec_context
        self.width, self.height = int(ctx.width), int(ctx.height)
        if self.width <= 0 or self.height <= 0:
            self._container.close()
            raise MediaError(f"{path}: video stream has no picture size")
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.rate: Fraction | None = Fraction(rate) if rate else None
        self.time_base: Fraction | None = (
            Fraction(self._stream.time_base) if self._stream.time_base else None
        )
        frames = int(self._stream.frames or 0)
        self.frame_count: int | None = frames or None

    def frames(self) -> Iterator[RawFrame]:
        index = packets = 0
        try:
            for packet in self._container.demux(self._stream):
                # A file cut short (e.g. a faststart MP4 whose index outlives its data) ends in a
                # short read, which FFmpeg flags and otherwise passes on silently.
                if packet.is_corrupt:
                    raise MediaError(f"{self.path}: truncated or damaged at frame {index}")
                packets += packet.size > 0
                for frame in packet.decode():
                    yield RawFrame(_to_bgr(frame), index, frame.pts, self.time_base)
                    index += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(f"{self.path}: decoding failed at frame {index} ({_reason(exc)})") from None
        if index == 0:
            raise MediaError(f"{self.path}: no decodable video frames")
        # Cut exactly between two frames, the file still looks whole; only its own index, which
        # counts every sample (edit lists included), shows that packets are missing.
        if self.frame_count and packets < self.frame_count:
            raise MediaError(
                f"{self.path}: truncated: {packets} of the {self.frame_count} frames it lists"
            )

    def close(self) -> None:
        self._container.close()


def _to_bgr(frame: Any) -> Pixels:
    # OpenCV's SIMD conversion of limited-range 4:2:0 is about 4x faster than swscale's.
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        bgr = cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)
    else:
        bgr = frame.to_ndarray(format="bgr24")
    return np.asarray(bgr, dtype=np.uint8)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
