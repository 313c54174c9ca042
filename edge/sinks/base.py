"""The sink stage's one interface: it accepts redacted frames and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

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


Discard = Literal["error", "interrupted", "partial"]


class RecordingEvents(Protocol):
    """What the recording reports, for the audit log and the status; segment_closed and
    segment_deleted may come from a background thread, never two events at once."""

    def segment_closed(self, out: Published, *, recovered: bool) -> None:
        """A segment was published. recovered: cut back to its whole fragments after a killed
        run or a write error (its last frames may be missing), rather than closed normally."""

    def segment_discarded(
        self, path: Path, frames: int, reason: Discard, error: BaseException | None
    ) -> None:
        """A partial segment was removed with nothing playable in it (or could not be
        published). frames: how many were written to it (0 when found by recover())."""

    def segment_deleted(self, path: Path, sha256: str, reason: str) -> None:
        """Retention deleted a segment; reason: "age", "disk-budget" or "free-space"."""

    def storage_full(self, free_bytes: int) -> None:
        """The disk filled: recording is paused, frames are dropped until it resumes."""

    def storage_resumed(self, free_bytes: int) -> None:
        """There is room again; the next segment opens with the frame being written."""


class Tap(Protocol):
    """A side output fed from the sink thread after each frame: the preview, the stream out.

    `offer` never waits for the output: it keeps a reference to the frame (its pixels are
    read-only) and returns, and the output's own thread encodes and sends. A client or receiver
    that cannot keep up loses frames, counted by the output, and never slows the frame loop."""

    def offer(self, frame: RedactedFrame) -> None: ...

    def close(self) -> None:
        """Stop the output's threads and release its socket, in bounded time."""


class OutputEvents(Protocol):
    """What a side output reports for the audit log; may be called from its own thread."""

    def output_lost(self, output: str, reason: str) -> None:
        """The receiver went away or stalled (reason: a short lowercase word, never a URL)."""

    def output_restored(self, output: str, offline_s: float, attempts: int) -> None:
        """It takes frames again after `offline_s` and `attempts` connection tries."""


def require_redacted(frame: object) -> RedactedFrame:
    """Defence in depth behind the type checker: refuse anything but a RedactedFrame."""
    if not isinstance(frame, RedactedFrame):
        raise TypeError(f"sinks accept only RedactedFrame, got {type(frame).__name__}")
    return frame
