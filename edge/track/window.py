"""The frames a run holds back until every part of them has been searched (vouched for), so that
what is found later can still be drawn on them.

A face found for the first time on frame n may have been there, unfound, on the frames before
it: its part of the picture had not been searched again yet. `backfill` follows it back through
the frames held, by optical flow, and gives each of them its box on that frame. Memory is
bounded: the run lets frames out as they are vouched for, and never holds more than it allows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from edge.detect.detections import Detections
from edge.track.flow import Box, Grey, follow_all, grown, reach
from edge.track.tracker import boxes_on_frame

T = TypeVar("T")

_GROW_ON_LOSS = 1.15  # a box the flow lost is drawn once more, this much larger, then dropped


@dataclass(slots=True)
class Held(Generic[T]):
    """A frame waiting to be redacted, with every box gathered for it so far."""

    item: T
    grey: Grey | None = None  # its grey picture, for following faces back (None once let out)
    index: int = 0  # its place among the frames the run took
    boxes: list[Detections] = field(default_factory=list)
    failed: str | None = None  # why the frame cannot be vouched for, if it cannot
    # (dx, dy) the picture moved since the frame held before it (`Tracker.moved`), if known.
    moved: NDArray[np.float64] | None = None

    def faces(self) -> Detections:
        return Detections.concat(self.boxes)


class Window(Generic[T]):
    def __init__(self, frames: int) -> None:
        """Hold at most `frames` frames; the oldest leaves when a newer one needs its place."""
        if frames < 1:
            raise ValueError("a window holds at least one frame")
        self.frames = frames
        self._held: deque[Held[T]] = deque()

    def __len__(self) -> int:
        return len(self._held)

    def newest(self) -> Held[T] | None:
        return self._held[-1] if self._held else None

    def push(self, held: Held[T]) -> Iterator[Held[T]]:
        """Add the newest frame; yield the oldest if the window was full (the caller decides
        whether it was vouched for)."""
        self._held.append(held)
        while len(self._held) > self.frames:
            yield self._let_out()

    def backfill(self, box: Box, depth: int, at: int | None = None) -> int:
        """Follow a face found on a held frame (the newest, or the one at place `at`) back
        through up to `depth` frames before it, giving each its box there; stop where the flow
        loses it (after drawing it once more, grown, on that frame). Returns how many frames got
        a box."""
        return self.backfill_all([box], [depth], at)[0]

    def backfill_all(
        self, boxes: Sequence[Box], depths: Sequence[int], at: int | None = None
    ) -> list[int]:
        """`backfill` for several faces found on the same frame, followed back together."""
        start = len(self._held) - 1 if at is None else at
        given = [0] * len(boxes)
        alive = {i: box for i, box in enumerate(boxes) if depths[i] > 0}
        after = self._held[start] if 0 <= start < len(self._held) else None
        for place in range(start - 1, -1, -1):
            alive = {i: b for i, b in alive.items() if given[i] < depths[i]}
            before = self._held[place]
            if not alive or after is None or before.grey is None or after.grey is None:
                break
            # A frame whose search failed is obscured whole; the face is followed through it
            # onto the frames before, which the same later search vouches for.
            height, width = before.grey.shape[:2]
            order = list(alive)
            back = None if after.moved is None else -after.moved
            moves = follow_all(
                after.grey,
                before.grey,
                [alive[i] for i in order],
                [reach(alive[i]) for i in order],
                back,
            )
            drawn = []
            for i, moved in zip(order, moves, strict=True):
                given[i] += 1
                if moved is None:  # drawn once more, grown, and followed no further back
                    drawn.append(grown(alive.pop(i), _GROW_ON_LOSS))
                else:
                    alive[i] = moved
                    drawn.append(moved)
            before.boxes.append(boxes_on_frame(drawn, height, width))
            after = before
        return given

    def release(self, ready: Callable[[Held[T]], bool]) -> Iterator[Held[T]]:
        """Let out, oldest first, the frames that are `ready` (vouched for, or failed); stops at
        the first that is not: frames leave in order."""
        while self._held and ready(self._held[0]):
            yield self._let_out()

    def pending(self) -> list[Held[T]]:
        return list(self._held)

    def flush(self) -> Iterator[Held[T]]:
        while self._held:
            yield self._let_out()

    def _let_out(self) -> Held[T]:
        held = self._held.popleft()
        held.grey = None  # nothing follows a face onto a frame that has left
        return held
