"""The capture stage's one interface."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Protocol

from edge.frames import RawFrame


class FrameSource(Protocol):
    """Yields raw frames in presentation order. Raises `MediaError` when the input is unreadable."""

    kind: str  # "video-file", "image-file", later "picamera2", "rtsp", ...
    width: int
    height: int
    rate: Fraction | None  # frames per second, None for stills

    def frames(self) -> Iterator[RawFrame]: ...

    def close(self) -> None: ...
