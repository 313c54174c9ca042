"""Hold recorded frames back by K so that later findings can still be drawn on them.

Memory is bounded: at most K frames (and their boxes) are held at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from edge.detect.detections import Detections
from edge.track.tracker import Coverage

T = TypeVar("T")


@dataclass(slots=True)
class Held(Generic[T]):
    """A frame waiting to be redacted, with every box gathered for it so far."""

    item: T
    boxes: list[Detections] = field(default_factory=list)
    failed: str | None = None  # why the frame cannot be vouched for, if it cannot
    searched: bool = True  # the detector ran on this very frame

    def faces(self) -> Detections:
        return Detections.concat(self.boxes)


class Lookahead(Generic[T]):
    def __init__(self, frames: int, after: int = 0) -> None:
        """Hold `frames` frames. `after`: searched frames that must follow a frame before it
        may leave early (`release`); a fine pass spread over several frames searches each part
        of the picture only every so often, so a frame is vouched for once enough later ones
        were searched (`edge.detect.sweep`)."""
        if frames < 0:
            raise ValueError("lookahead must be >= 0")
        if not 0 <= after <= frames:
            raise ValueError("a frame cannot wait for more later frames than the window holds")
        self.frames = frames
        self.after = after
        self._held: deque[Held[T]] = deque()

    def push(
        self, item: T, coverage: Coverage, failed: str | None = None, *, searched: bool = True
    ) -> Iterator[Held[T]]:
        """Add a frame and its coverage; yield the frames that leave the window, oldest first."""
        for ago, boxes in coverage.backfill.items():
            if ago <= len(self._held):
                self._held[-ago].boxes.append(boxes)
        self._held.append(Held(item, [coverage.boxes], failed, searched))
        while len(self._held) > self.frames:
            yield self._held.popleft()

    def release(self, due: Callable[[T], bool]) -> Iterator[Held[T]]:
        """Let out early, oldest first, the frames that are `due` and vouched for: searched
        themselves, or with a searched frame after them in the window (or failed: obscured)."""
        while self._held and due(self._held[0].item) and self._vouched(0):
            yield self._held.popleft()

    def _vouched(self, at: int) -> bool:
        """Searched itself or later on, with `after` searched frames after it; or failed (it
        will be obscured whole)."""
        if self._held[at].failed is not None:
            return True
        later = sum(1 for i in range(at + 1, len(self._held)) if self._held[i].searched)
        return later >= self.after and (self._held[at].searched or later > 0)

    def unvouched(self) -> list[Held[T]]:
        """The frames not vouched for (at the end of a stream: no frame follows): after the
        last searched one, or with fewer than `after` searched frames after them."""
        return [h for i, h in enumerate(self._held) if not self._vouched(i)]

    def flush(self) -> Iterator[Held[T]]:
        while self._held:
            yield self._held.popleft()
