"""The two frame types. Sinks accept only `RedactedFrame`; only the redaction stage makes one.

`RedactedFrame.__init__` demands a capability object, `REDACTION_STAGE`, that only `edge.redact`
may import (tests/test_architecture.py enforces that with an AST scan). A frame that did not go
through redaction therefore cannot be typed, or constructed, as one that did.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

Pixels = NDArray[np.uint8]


class _Sized:
    __slots__ = ()
    pixels: Pixels

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass(slots=True)
class RawFrame(_Sized):
    """A decoded frame straight from a source: BGR, HxWx3, uint8. Never leaves the pipeline."""

    pixels: Pixels
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    # time.monotonic() when a live source captured it: the frame's deadline counts from here.
    captured: float | None = None
    # A smaller picture of the same instant for the detector (picamera2's `lores` stream), BGR;
    # boxes found on it are scaled to `pixels`. None: detect on `pixels`.
    lores: Pixels | None = None


class _Capability:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<redaction stage>"


REDACTION_STAGE = _Capability()


class RedactedFrame(_Sized):
    """A frame whose every detected face, or the whole picture, has been redacted.

    `faces` is a count, `obscured` says the whole frame was covered because the pipeline could
    not vouch for it (fail closed). Pixels are read-only from here on.
    """

    __slots__ = ("pixels", "index", "pts", "time_base", "faces", "obscured", "captured")

    def __init__(
        self,
        pixels: Pixels,
        *,
        index: int,
        pts: int | None,
        time_base: Fraction | None,
        faces: int,
        obscured: bool,
        capability: _Capability,
        captured: float | None = None,
    ) -> None:
        if capability is not REDACTION_STAGE:
            raise TypeError("only the redaction stage makes a RedactedFrame")
        pixels.flags.writeable = False
        self.pixels = pixels
        self.index = index
        self.pts = pts
        self.time_base = time_base
        self.faces = faces
        self.obscured = obscured
        self.captured = captured
