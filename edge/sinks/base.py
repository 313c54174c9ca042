"""The sink stage's one interface: it accepts redacted frames and nothing else."""

from __future__ import annotations

from typing import Protocol

from edge.frames import RedactedFrame


class Sink(Protocol):
    def write(self, frame: RedactedFrame) -> None: ...

    def close(self) -> None:
        """Finish and publish the output."""

    def abort(self) -> None:
        """Drop a partial output; nothing is left under the final name."""


def require_redacted(frame: object) -> RedactedFrame:
    """Defence in depth behind the type checker: refuse anything but a RedactedFrame."""
    if not isinstance(frame, RedactedFrame):
        raise TypeError(f"sinks accept only RedactedFrame, got {type(frame).__name__}")
    return frame
