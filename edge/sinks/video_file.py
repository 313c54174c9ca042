"""MP4 (H.264) output through PyAV. One output frame per redacted frame, same size, and the
source's own timestamps (so variable-rate recordings keep their timing). No audio, no metadata:
nothing from the input container is copied."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av

from edge.config import VideoConfig
from edge.errors import OutputError
from edge.frames import RedactedFrame
from edge.sinks.atomic import AtomicFile, Seal
from edge.sinks.base import Published, require_redacted
from edge.sinks.h264 import pix_fmt_for, video_frame


class VideoFileSink:
    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        rate: Fraction,
        cfg: VideoConfig,
        time_base: Fraction | None = None,
        seal: Seal | None = None,
    ) -> None:
        """`time_base` is the source's: frames that carry timestamps in it keep them. `seal`
        rewrites the finished file before it is published (provenance)."""
        self._file = AtomicFile(path)
        self._seal = seal
        self._last_pts: int | None = None
        self._first_pts: int | None = None
        self._frames = 0
        self._source_time_base = time_base
        try:
            self._container: Any = av.open(str(self._file.temp), mode="w", format="mp4")
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = pix_fmt_for(width, height)
            # Kept apart: the muxer rewrites stream.time_base once the header is written.
            self._time_base = time_base or 1 / Fraction(rate)
            self._step = max(1, round(1 / (Fraction(rate) * self._time_base)))
            stream.time_base = self._time_base
            stream.codec_context.time_base = self._time_base
            stream.options = {"crf": str(cfg.crf), "preset": cfg.preset}
            stream.thread_type = "AUTO"
            self._stream = stream
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._file.discard()
            raise OutputError(f"cannot open video encoder for {path}: {exc}") from None

    def write(self, frame: RedactedFrame) -> None:
        frame = require_redacted(frame)
        out = video_frame(frame.pixels, self._stream.pix_fmt)
        out.pts = self._last_pts = self._next_pts(frame)
        out.time_base = self._time_base
        try:
            self._container.mux(self._stream.encode(out))
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot encode to {self._file.final}: {exc}") from None
        self._frames += 1

    def _next_pts(self, frame: RedactedFrame) -> int:
        """The source's timestamp, shifted to start at 0; one nominal frame step past the last
        one where the source has none or would go backwards. Always strictly increasing."""
        last = self._last_pts
        same_clock = (
            self._source_time_base is not None and frame.time_base == self._source_time_base
        )
        if frame.pts is not None and same_clock:
            if self._first_pts is None:
                self._first_pts = frame.pts
            pts = frame.pts - self._first_pts
            if last is None or pts > last:
                return pts
        return 0 if last is None else last + self._step

    def close(self) -> Published:
        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot finish {self._file.final}: {exc}") from None
        size, digest = self._file.commit(self._seal)
        last = None if self._last_pts is None else float(self._last_pts * self._time_base)
        return Published(
            self._file.final, size, digest, self._frames, 0.0 if self._frames else None, last
        )

    def abort(self) -> None:
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            pass
        self._file.discard()


class VideoSource(Protocol):
    """What a video sink copies from a recorded video (`edge.capture.VideoFileSource`), which a
    sink may not import: its upright size, its rate and its clock."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def rate(self) -> Fraction | None: ...
    @property
    def time_base(self) -> Fraction | None: ...


def video_sink_for(
    source: VideoSource, path: Path, cfg: VideoConfig, seal: Seal | None = None
) -> VideoFileSink:
    """An MP4 sink matching the source: its upright size, its rate, its timestamps."""
    return VideoFileSink(
        path,
        width=source.width,
        height=source.height,
        rate=source.rate or Fraction(30),
        cfg=cfg,
        time_base=source.time_base,
        seal=seal,
    )
