"""Adapt to the device: the frame rate and sweep a live run can hold with every frame it takes
searched in full.

At start `calibrate` times each kind of detector pass on a picture of the camera's size (the whole
frame once, the fine regions of one sweep). Of the rates the profile allows (the camera's `fps`
evenly decimated, never below `min_fps`) and the sweeps it allows (`schedule.sweep` up to
`max_sweep`, each holding a frame at most `LATENCY_USE` of `max_latency_ms`), the run takes the
highest rate, and then the shortest sweep, whose time (the detector's passes, and each frame's
decoding, following, redacting and encoding, `OVERHEAD`) fits `SHARE` of the device's time. As
it runs, `check` looks at what it lost: more than `LOSS` of the frames taken in the last
`_LOOK_S` moves it to the first option that costs what the run managed (but to the longest sweep
at its rate before a lower rate), and at the last option (`min_fps`, the longest sweep) such a
loss over `JUDGE_S` is "cannot keep up": said as soon as more than `LOSS` of the frames that span
takes are lost within it, or judged on the span once it has passed; a run that ends sooner is
judged whole at its end (once it ran `_FIRST_S` at that option).

Decimation is even and counted: `take` lets `rate / fps` of the source's frames through, each frame
let pass is `not_taken`, never dropped. A camera that can be asked for a rate is asked for the
chosen one instead (`edge.cli.run_cmd`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from edge.config import LiveConfig, ScheduleConfig
from edge.detect.passes import Pass, Searching
from edge.run.realtime import LATENCY_USE
from edge.run.report import RunReport

SHARE = 0.9  # of the device's time a run plans to use: the rest absorbs the jitter
# A taken frame's other work (decoding, following faces, redacting, x264 ultrafast), measured at
# 720p on the reference machines as about this many times the whole-frame pass of the body
# camera's profile (320 px): both scale with the device, so the pass measures it.
OVERHEAD = 1.4
LOSS = 0.02  # the most of the frames taken a run may lose (late, overload) and keep up
JUDGE_S = 60.0  # the span a loss is judged over
_FIRST_S = 5.0  # a run that ends sooner at its last option has not taken enough frames to judge
_LOOK_S = 2.0  # how often, and over how long, `check` looks at the losses
_KEEP_UP = ("overload", "late")  # the causes that mean the device is too slow
# The shares of the camera's rate a run may take, highest first: each is an even decimation.
_RATES = tuple(
    Fraction(n, d) for n, d in ((1, 1), (5, 6), (3, 4), (2, 3), (1, 2), (2, 5), (1, 3), (1, 4))
) + tuple(Fraction(1, d) for d in (5, 6, 8, 10, 15, 30))


@dataclass(frozen=True)
class Costs:
    """Milliseconds, measured: one whole-frame pass, and every fine pass of a sweep together."""

    whole_ms: float
    fine_ms: float

    def per_second(self, fps: float, sweep: int, whole_every: int) -> float:
        """Device time a second at `fps` taken frames a second with this sweep: the detector's
        passes, and each frame's other work (`OVERHEAD`)."""
        return fps * (self.whole_ms * (OVERHEAD + 1.0 / whole_every) + self.fine_ms / sweep)


@dataclass(frozen=True)
class Choice:
    share: Fraction  # of the source's frames taken
    fps: float  # taken a second
    sweep: int
    keeps_up: bool  # predicted (at start) or seen (as it runs)
    reason: str  # "calibrated", "losing-frames", "cannot-keep-up"

    def words(self, source_fps: float, whole_every: int, costs: Costs | None) -> str:
        taken = f"{self.fps:.3g} of {source_fps:.3g} frames/s"
        cost = (
            f" (measured: whole frame {costs.whole_ms:.0f} ms, fine regions "
            f"{costs.fine_ms:.0f} ms a sweep)"
            if costs
            else ""
        )
        whole = f", the whole frame every {whole_every}" if whole_every > 1 else ""
        return f"taking {taken}, fine sweep over {self.sweep} frame(s){whole}{cost}"


def calibrate(detector: object, height: int, width: int, repeats: int = 5) -> Costs | None:
    """Time the detector's passes on a `height` x `width` picture (noise: the cost of a pass
    does not depend on what it shows): the median of `repeats` back to back, after a warm-up.
    Not the best: under a CPU quota (a container's, or the Pi 5 stand-in's) a 10 ms pass that
    fits in one quota period runs at the full core's speed, and a run at the quota's does not;
    and not one timing: on two cores one reads half as much again one time in three or so
    (waking the model's second thread). None for a detector without passes."""
    if not isinstance(detector, Searching):
        return None
    picture = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    passes = detector.passes(height, width)
    whole = [p for p in passes if p.kind == "whole"]
    fine = [p for p in passes if p.kind == "fine"]

    searching: Searching = detector

    def timed(chosen: list[Pass]) -> float:
        if not chosen:
            return 0.0
        searching.search(picture, chosen, 0)  # warm-up
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            searching.search(picture, chosen, 0)
            times.append((time.perf_counter() - began) * 1000.0)
        return float(np.median(times))

    return Costs(timed(whole), timed(fine))


class Pace:
    """A live run's choice of rate and sweep, and its decimation (thread-safe)."""

    def __init__(self, live: LiveConfig, schedule: ScheduleConfig, costs: Costs | None) -> None:
        self.source_fps, self.costs = live.fps, costs
        self.whole_every, self.order = schedule.whole_every, schedule.order
        self.options = _options(live, schedule)
        # Frames a frame may wait for its searches at the longest sweep the run may choose.
        self.longest_wait = max(schedule.wait(sweep) for _, sweep in self.options)
        self._lock = threading.Lock()
        self._at = 0  # index into options
        self._credit = Fraction(0)
        self.cannot = False  # judged: even the last option loses more than LOSS
        self._by_camera = False  # the camera was asked for the chosen rate: no decimation
        self.changes: deque[Choice] = deque()  # choices not yet logged (the audit trail's)
        # The first option whose plan fits; the last, said not to keep up, if none does.
        fits = (
            i
            for i in range(len(self.options))
            if self.costs is None or self._cost(i) <= SHARE * 1000.0
        )
        first = next(fits, None)
        if first is None:
            self.choice = self._move(len(self.options) - 1, False, "calibrated")
        else:
            self.choice = self._move(first, True, "calibrated")
        self._marks: deque[tuple[float, int, int]] = deque()  # (time, taken, lost)
        self._last_look = time.monotonic()
        self._started = self._last_look
        self._marks.append((self._started, 0, 0))  # the run's counts start at nothing
        self._grace_until = self._started  # after a change: the frames of the last option

    def _move(self, at: int, keeps_up: bool, reason: str) -> Choice:
        """Take option `at` as the choice, to be logged."""
        self._at = at
        share, sweep = self.options[at]
        self.choice = Choice(share, float(share) * self.source_fps, sweep, keeps_up, reason)
        self.changes.append(self.choice)
        return self.choice

    @property
    def sweep(self) -> int:
        return self.choice.sweep

    def words(self) -> str:
        return self.choice.words(self.source_fps, self.whole_every, self.costs)

    def camera_rate(self) -> None:
        """The camera was opened at the chosen rate: every frame it delivers is taken. A later
        change of rate decimates what it delivers."""
        with self._lock:
            self._by_camera, self._camera_share = True, self.choice.share

    def take(self) -> bool:
        """For each frame the source delivers: whether the run takes it (an even decimation)."""
        with self._lock:
            share = self.choice.share
            if self._by_camera:
                share = min(Fraction(1), share / self._camera_share)
            self._credit += share
            if self._credit >= 1:
                self._credit -= 1
                return True
            return False

    def check(
        self, report: RunReport, now: float | None = None, *, final: bool = False
    ) -> Choice | None:
        """Look at the frames lost since the last look (every `_LOOK_S`, and once more at the
        end of the run, `final`); returns a new choice when it made one."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._last_look < _LOOK_S and not final:
                return None
            self._last_look = now
            taken = report.frames_in - report.not_taken
            lost = sum(report.failures[c] for c in _KEEP_UP)
            if now < self._grace_until and not final:
                # Frames taken at the faster option are still on their way out, late: what
                # they lose is not this option's.
                self._marks.clear()
                self._marks.append((now, taken, lost))
                self._started = now
                return None
            self._marks.append((now, taken, lost))
            while self._marks and now - self._marks[0][0] > JUDGE_S:
                self._marks.popleft()
            if len(self._marks) < 2:
                return None
            t1, n1, l1 = self._marks[-1]
            t0, n0, l0 = self._marks[-2]
            recent = (l1 - l0) / max(1, n1 - n0)
            if recent > LOSS and self._at < len(self.options) - 1 and not final:
                choice = self._slower(recent)
                self._grace_until = now + 1.5 * _LOOK_S  # the next look
                # What was lost at a faster option says nothing of this one: judged afresh.
                self._marks.clear()
                self._marks.append((now, n1, l1))
                self._started = now
                return choice
            if self._at == len(self.options) - 1 and not self.cannot:
                _, nj, lj = self._marks[0]
                # Lost within the span already more than its frames may lose: said at once.
                certain = l1 - lj > LOSS * self.choice.fps * JUDGE_S
                # Else the span's share, once a whole span has passed (or at the end of a run
                # shorter than that): a bad few seconds in a good minute keep up.
                ran = now - self._started
                whole = ran >= JUDGE_S or (final and ran >= _FIRST_S)
                if certain or (whole and (l1 - lj) / max(1, n1 - nj) > LOSS):
                    self.cannot = True
                    return self._move(self._at, False, "cannot-keep-up")
            return None

    def _slower(self, lost: float) -> Choice:
        """The first option that costs at most what the current one managed: its cost less the
        share `lost` of the frames it took, with a tenth to spare; the last option if none
        does. But a lower rate only once the longest sweep at this rate was tried: a loss
        says the plan is short, not by how much (the first seconds of a run cost more than
        the rest), and a camera that keeps its rate is what the profile asks for first.
        Without measured costs, the next option."""
        if self.costs is None:
            return self._move(self._at + 1, False, "losing-frames")
        managed = self._cost(self._at) * (1.0 - lost) * 0.9
        at = next(
            (i for i in range(self._at + 1, len(self.options)) if self._cost(i) <= managed),
            len(self.options) - 1,
        )
        rate = self.options[self._at][0]
        same = [i for i in range(self._at + 1, len(self.options)) if self.options[i][0] == rate]
        if same and self.options[at][0] != rate:
            at = same[-1]
        return self._move(at, False, "losing-frames")

    def _cost(self, at: int) -> float:
        share, sweep = self.options[at]
        assert self.costs is not None
        return self.costs.per_second(float(share) * self.source_fps, sweep, self.whole_every)

    def status(self) -> dict[str, object]:
        c = self.choice
        return {
            "fps_taken": round(c.fps, 2),
            "source_fps": self.source_fps,
            "sweep": c.sweep,
            "whole_every": self.whole_every,
            "order": self.order,
            "reason": c.reason,
            "cannot_keep_up": self.cannot,
        }


def _options(live: LiveConfig, schedule: ScheduleConfig) -> list[tuple[Fraction, int]]:
    """Every (share of frames taken, sweep) the profile allows, cheapest last: each rate from
    the highest, with each sweep the latency budget holds at it, shortest first."""
    out: list[tuple[Fraction, int]] = []
    for share in _RATES:
        fps = float(share) * live.fps
        if fps < live.least_fps - 1e-9:
            break
        for sweep in range(schedule.sweep, schedule.longest_sweep + 1):
            if schedule.wait(sweep) * 1000.0 / fps <= LATENCY_USE * live.max_latency_ms:
                out.append((share, sweep))
    # `Config` checks that the shortest sweep fits the whole budget at `fps`; where it fits only
    # that (not the share a plan uses), the camera's rate and the shortest sweep are the option.
    return out or [(Fraction(1), schedule.sweep)]
