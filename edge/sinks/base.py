"""The sink stage's one interface: it accepts redacted frames and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.frames import RedactedFrame


@dataclass(frozen=True)
class Published:
    """A finished output as it was published: what the audit log records about it."""

    path: Path
    size: int
    sha256: str  # of the bytes renamed into place, hashed after fsync
    frames: int
    first_ts: float | None  # seconds on the output's own timeline; None for a still image
    last_ts: float | None


class Sink(Protocol):
    def write(self, frame: RedactedFrame) -> None: ...

    def close(self) -> Published | None:
        """Finish and publish the output (None: a segmented sink with no segment open)."""

    def abort(self) -> None:
        """Drop a partial output; nothing is left under the final name."""


def require_redacted(frame: object) -> RedactedFrame:
    """Defence in depth behind the type checker: refuse anything but a RedactedFrame."""
    if not isinstance(frame, RedactedFrame):
        raise TypeError(f"sinks accept only RedactedFrame, got {type(frame).__name__}")
    return frame
