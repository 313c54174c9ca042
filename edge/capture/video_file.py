"""Recorded video through PyAV (FFmpeg). Video stream only: audio and metadata are never read.

The one piece of metadata that is *applied* rather than copied is the display rotation of phone
videos: frames are turned upright, since the output carries no rotation tag.

A stream that declares a frame over the pixel limit is refused before anything is decoded, and so
is one with a decoded frame over it (a stream may change size midway), before that frame is
converted.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge.config import DEFAULT_MAX_PIXELS
from edge.errors import MediaError
from edge.frames import Pixels, RawFrame

# Counter-clockwise display rotation (as FFmpeg reports it) → the cv2.rotate code that shows the
# frame upright.
_UPRIGHT = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, -90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180}


class VideoFileSource:
    kind = "video-file"

    def __init__(
        self, path: Path, *, threads: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.path = path
        self.max_pixels = max_pixels
        try:
            self._container: Any = av.open(str(path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(f"{path}: not a readable video ({_reason(exc)})") from None
        try:
            self._open(threads)
        except BaseException:
            self._container.close()
            raise

    def _open(self, threads: int) -> None:
        if not self._container.streams.video:
            raise MediaError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        context = self._stream.codec_context
        self._check_size(int(context.width or 0), int(context.height or 0), "declares")
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = threads
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.rate: Fraction | None = Fraction(rate) if rate else None
        self.time_base: Fraction | None = (
            Fraction(self._stream.time_base) if self._stream.time_base else None
        )
        self.frame_count: int | None = int(self._stream.frames or 0) or None
        self._packets = 0
        self._decoded = self._decode()
        # The first frame tells the picture size and rotation that every frame will have.
        try:
            self._first: Any = next(self._decoded)
        except StopIteration:
            raise MediaError(f"{self.path}: no decodable video frames") from None
        rotation = int(round(self._first.rotation or 0))
        rotation = 180 if rotation == -180 else rotation
        self._rotate = _UPRIGHT.get(rotation)
        self.rotation = rotation if self._rotate is not None else 0
        w, h = int(self._first.width), int(self._first.height)
        self._check_size(w, h, "frame 0 has")
        self.width, self.height = (h, w) if self.rotation in (90, -90) else (w, h)

    def _decode(self) -> Iterator[Any]:
        index = 0
        try:
            for packet in self._container.demux(self._stream):
                # A file cut short (e.g. a faststart MP4 whose index outlives its data) ends in a
                # short read, which FFmpeg flags and otherwise passes on silently.
                if packet.is_corrupt:
                    raise MediaError(f"{self.path}: truncated or damaged at frame {index}")
                self._packets += packet.size > 0
                for frame in packet.decode():
                    yield frame
                    index += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(
                f"{self.path}: decoding failed at frame {index} ({_reason(exc)})"
            ) from None

    def _check_size(self, width: int, height: int, how: str) -> None:
        if width * height > self.max_pixels:
            raise MediaError(
                f"{self.path}: {how} {width}x{height} pixels a frame, over the limit of "
                f"{self.max_pixels:,} ([input] max_image_area)"
            )

    def frames(self) -> Iterator[RawFrame]:
        index = 0
        for frame in _chain(self._first, self._decoded):
            self._check_size(int(frame.width), int(frame.height), f"frame {index} has")
            try:
                pixels = to_bgr(frame)
            except (av.FFmpegError, ValueError, cv2.error) as exc:  # a pixel format it cannot take
                raise MediaError(
                    f"{self.path}: decoding failed at frame {index} ({_reason(exc)})"
                ) from None
            if self._rotate is not None:
                pixels = np.asarray(cv2.rotate(pixels, self._rotate), dtype=np.uint8)
            yield RawFrame(pixels, index, frame.pts, self.time_base)
            index += 1
        # Cut exactly between two frames, the file still looks whole; only its own index, which
        # counts every sample (edit lists included), shows that packets are missing.
        if self.frame_count and self._packets < self.frame_count:
            raise MediaError(
                f"{self.path}: truncated: {self._packets} of the {self.frame_count} frames it lists"
            )

    def rewind(self) -> None:
        """Back to the first frame, with the same demuxer and decoder (a looped live file then
        allocates nothing new each time round)."""
        self._container.seek(0, stream=self._stream)
        self._packets = 0
        self._decoded = self._decode()
        try:
            self._first = next(self._decoded)
        except StopIteration:
            raise MediaError(f"{self.path}: no decodable video frames after rewinding") from None

    def close(self) -> None:
        self._container.close()


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def to_bgr(frame: Any) -> Pixels:
    # OpenCV's SIMD conversion of limited-range 4:2:0 is about 4x faster than swscale's.
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        bgr = cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)
    else:
        bgr = frame.to_ndarray(format="bgr24")
    return np.asarray(bgr, dtype=np.uint8)


def _reason(exc: BaseException) -> str:
    # PyAV's errors (and OSErrors) carry FFmpeg's error code as an errno and repeat the path in
    # str() ("[Errno 1094995529] Invalid data found when processing input: '…'"): the words.
    words = getattr(exc, "strerror", None)
    if isinstance(words, str) and words:
        return words
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
