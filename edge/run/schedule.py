"""Search sparse: which of the detector's passes each frame gets, and when a frame is vouched for.

A detector that covers a frame in passes (`edge.detect.passes`: the whole frame small, and fine
regions larger) need not run all of them on every frame: faces persist from frame to frame, and
the tracker follows them in between. So the whole-frame pass runs every `whole_every` frames and
the fine passes are spread over `sweep` frames, each searched once in that many frames:

- order "sweep" (a worn camera, where everything moves): every fine region in turn;
- order "changed" (a fixed camera): each frame's share goes first to the regions that changed
  since they were last searched, oldest first, then to the others in turn; no region waits more
  than `longest_gap` frames, changed or not, so a still face is never left unsearched for long.

A frame is *vouched for* once every part of it has been searched at or after it: the whole frame
(every `whole_every` frames) and every fine region; in "changed" order a region also vouches for
the frames on which it still looks as it did when it was last searched (whatever face is there
was there then). A face that appears on a frame is then found within `sweep` frames and followed
back to it (`edge.track.window`) before the frame may leave. A detector without passes searches
every frame whole, and every frame is vouched for at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config import ScheduleConfig, frames_waited
from edge.detect.passes import Pass, Searching
from edge.track.flow import Box, Grey

Order = Literal["sweep", "changed"]
_THUMB = 8  # frame pixels per side of one thumbnail pixel, for telling what changed
_CHANGE = 12  # grey levels a thumbnail pixel must move to count as changed (noise stays below)
_CHANGED_PIXELS = 2  # changed thumbnail pixels that make a region changed (a 16 px face: 4)


@dataclass(frozen=True, slots=True)
class Plan:
    """One frame's searches: the passes to run, and the fine regions (by their place in the
    detector's list) that still look as at their last search."""

    index: int
    passes: list[Pass]
    cycle: int
    unchanged: frozenset[int] = field(default_factory=frozenset)
    # Order "changed": the frame's thumbnail, which a region's search remembers it looked like.
    thumb: NDArray[np.int16] | None = field(default=None, compare=False, repr=False)

    def covered(self, box: Box) -> bool:
        """Whether this frame's searches should have found a face at `box`."""
        return any(p.answers_for(box) for p in self.passes)


class Schedule:
    def __init__(
        self,
        detector: object,
        *,
        sweep: int = 1,
        whole_every: int = 1,
        order: Order = "sweep",
        longest_gap: int | None = None,
    ) -> None:
        if sweep < 1 or whole_every < 1:
            raise ValueError("sweep and whole_every must be at least 1")
        gap = longest_gap if longest_gap is not None else sweep
        if gap < sweep:
            raise ValueError("longest_gap must be at least the sweep")
        # A still image's detector searches its own way (larger, upscaled): every frame whole.
        searching = isinstance(detector, Searching) and not getattr(detector, "still", False)
        self.detector: Searching | None = detector if searching else None  # type: ignore[assignment]
        self.sweep, self.whole_every, self.order, self.longest_gap = (
            sweep,
            whole_every,
            order,
            gap,
        )
        self._shape: tuple[int, int] | None = None
        self._whole: list[Pass] = []
        self._fine: list[Pass] = []
        self._last_whole = -1
        self._last: list[int] = []  # per fine pass: the last frame it searched
        self._seen: list[NDArray[np.int16] | None] = []  # per fine pass: its thumbnail then
        self._thumb: NDArray[np.int16] | None = None

    def wait(self) -> int:
        """Frames a frame may wait, at most, before every part of it has been searched (the
        sweep may change as a live run goes: `edge.run.pace`)."""
        return frames_waited(self.sweep, self.whole_every)

    @classmethod
    def of(cls, detector: object, cfg: ScheduleConfig, sweep: int | None = None) -> Schedule:
        return cls(
            detector,
            sweep=sweep or cfg.sweep,
            whole_every=cfg.whole_every,
            order=cfg.order,
            longest_gap=max(cfg.gap, cfg.longest_sweep, sweep or cfg.sweep),
        )

    @property
    def dense(self) -> bool:
        """A detector without passes: every frame searched whole."""
        return self.detector is None

    def passes(self, height: int, width: int) -> list[Pass]:
        """Every pass that covers a frame of this size once (empty for a dense detector)."""
        if self.detector is None:
            return []
        self._reshape(height, width)
        return [*self._whole, *self._fine]

    def plan(self, index: int, grey: Grey) -> Plan:
        """The searches of frame `index` (the frames a run takes, counted from 0)."""
        height, width = grey.shape[:2]
        cycle = index // self.sweep
        if self.detector is None:
            return Plan(index, [], cycle)
        self._reshape(height, width)
        unchanged: frozenset[int] = frozenset()
        if self.order == "changed":
            self._thumb = _thumbnail(grey)
            unchanged = frozenset(i for i in range(len(self._fine)) if not self._changed(i))
        whole = list(self._whole) if index % self.whole_every == 0 else []
        share = self._share(index, unchanged)
        chosen = whole + [self._fine[i] for i in share]
        return Plan(index, chosen, cycle, unchanged, self._thumb)

    def searched(self, plan: Plan) -> None:
        """Record that `plan`'s passes ran (never for a frame whose search failed)."""
        for p in plan.passes:
            if p.kind == "whole":
                self._last_whole = max(self._last_whole, plan.index)
            elif plan.index >= self._last[i := self._fine.index(p)]:
                self._last[i] = plan.index
                # What the region looked like when searched: the searched frame's own thumbnail
                # (a frame searched late, when held too long, has none: it counts as changed).
                self._seen[i] = plan.thumb
        if self.detector is None:
            self._last_whole = max(self._last_whole, plan.index)

    def vouched(self, plan: Plan) -> bool:
        """Whether every part of `plan`'s frame has been searched at or after it (or, in
        "changed" order, still looked there as at its last search)."""
        if self.detector is None:
            return self._last_whole >= plan.index
        if self._whole and self._last_whole < plan.index:
            return False
        return all(last >= plan.index or i in plan.unchanged for i, last in enumerate(self._last))

    def _reshape(self, height: int, width: int) -> None:
        if self._shape == (height, width) or self.detector is None:
            return
        # A new frame size (a camera reopened at another resolution): nothing searched before
        # vouches for it.
        every = self.detector.passes(height, width)
        self._whole = [p for p in every if p.kind == "whole"]
        self._fine = [p for p in every if p.kind == "fine"]
        self._last = [-1] * len(self._fine)
        self._seen = [None] * len(self._fine)
        self._last_whole = -1
        self._shape = (height, width)

    def _share(self, index: int, unchanged: frozenset[int]) -> list[int]:
        """The fine passes frame `index` runs: as many as the sweep gives it, spread evenly."""
        count = len(self._fine)
        slot = index % self.sweep
        quota = [i for i in range(count) if (i * self.sweep) // count == slot]
        if self.order == "sweep" or not quota:
            return quota

        def priority(i: int) -> tuple[bool, bool, int]:
            age = index - self._last[i]
            return (age < self.longest_gap, i in unchanged, -age)

        return sorted(range(count), key=priority)[: len(quota)]

    def _changed(self, i: int) -> bool:
        seen, now = self._seen[i], self._thumb
        if seen is None or now is None or seen.shape != now.shape:
            return True
        x0, y0, x1, y1 = (v // _THUMB for v in self._fine[i].region)
        diff = np.abs(now[y0 : y1 + 1, x0 : x1 + 1] - seen[y0 : y1 + 1, x0 : x1 + 1])
        return int((diff > _CHANGE).sum()) >= _CHANGED_PIXELS


def _thumbnail(grey: Grey) -> NDArray[np.int16]:
    height, width = grey.shape[:2]
    small = cv2.resize(
        grey, (max(1, width // _THUMB), max(1, height // _THUMB)), interpolation=cv2.INTER_AREA
    )
    return np.asarray(small, dtype=np.int16)
