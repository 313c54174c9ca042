"""How a run spreads the detector's searches over frames ([schedule]): recorded media and live
sources share it (`edge.run.schedule`); `veil run` may lengthen the sweep up to `max_sweep` to
keep up with its camera (`edge.run.pace`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Closed as _Closed
from edge.config.errors import KeyedProblem

# Frames a frame waits beyond its sweep before it may leave: the frame that completes its search,
# and one frame's time to search, redact and hand it on (edge.run.vouch holds them).
WAIT_SLACK = 2


def frames_waited(sweep: int, whole_every: int) -> int:
    """Frames a frame waits, at most, before every part of it has been searched: the whole frame
    every `whole_every` frames, the fine regions over `sweep`."""
    return max(sweep, whole_every) + WAIT_SLACK


class ScheduleConfig(_Closed):
    """Search sparse: the whole frame every `whole_every` frames, the fine regions spread over
    `sweep` frames; every known face is followed on every frame in between."""

    sweep: int = Field(
        6,
        ge=1,
        le=32,
        description="spread the detector's fine regions (`detector.centerface.fine_grid`) over "
        "this many frames: each part of the picture is searched finely once every `sweep` "
        "frames, at 1/sweep of the cost per frame; a face that appears is found within `sweep` "
        "frames and followed back onto the frames before it, which wait for that",
    )
    max_sweep: int = Field(
        0,
        ge=0,
        le=32,
        description="`veil run`: the longest sweep it may choose to keep up with the camera "
        "(0 = `sweep`, never longer); it is bounded by `live.max_latency_ms` too",
    )
    whole_every: int = Field(
        2,
        ge=1,
        le=8,
        description="run the whole-frame pass (the large faces) on every Nth frame",
    )
    order: Literal["sweep", "changed"] = Field(
        "sweep",
        description="`sweep`: every fine region in turn (a worn camera, where all moves); "
        "`changed`: regions that changed since their last search first (a fixed camera), the "
        "others at most `longest_gap` frames apart",
    )
    longest_gap: int = Field(
        0,
        ge=0,
        le=300,
        description="order `changed`: the most frames any region goes unsearched, changed or not "
        "(0 = `sweep`); a still face is never left unsearched longer",
    )

    @property
    def longest_sweep(self) -> int:
        return max(self.sweep, self.max_sweep)

    @property
    def gap(self) -> int:
        return max(self.longest_gap or self.sweep, self.sweep)

    def wait(self, sweep: int | None = None) -> int:
        """Frames a frame waits, at most, before every part of it has been searched."""
        return frames_waited(sweep or self.sweep, self.whole_every)

    @model_validator(mode="after")
    def _bounded(self) -> ScheduleConfig:
        if self.max_sweep and self.max_sweep < self.sweep:
            raise KeyedProblem(
                ("max_sweep",),
                f"must be 0 or at least sweep ({self.sweep})",
            )
        if self.longest_gap and self.longest_gap < self.sweep:
            raise KeyedProblem(
                ("longest_gap",),
                f"must be 0 or at least sweep ({self.sweep}): a region cannot come round more "
                "often than the sweep",
            )
        return self
