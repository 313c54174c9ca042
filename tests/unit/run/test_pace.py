"""Keeping up (`edge.run.pace`): the rate and sweep chosen from measured pass costs, the even
decimation, and the judgement of what a run loses as it goes. The costs are written by hand (what
`calibrate` would have measured) and time is given to `check`, so nothing here waits or depends on
this machine's speed."""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import pytest

from edge.config import Config
from edge.run.pace import SHARE, Costs, Pace, _options
from edge.run.report import RunReport


def config(**live: Any) -> Config:
    """The body camera's keep-up settings (30 frames/s, at least 15, sweeps of 4 to 12 frames,
    a second of latency), with `live` changed."""
    return Config.model_validate(
        {
            "live": {"fps": 30.0, "min_fps": 15.0, "max_latency_ms": 1000.0, **live},
            "schedule": {"sweep": 4, "max_sweep": 12, "whole_every": 1},
        }
    )


def pace(costs: Costs | None, cfg: Config | None = None) -> Pace:
    cfg = cfg or config()
    return Pace(cfg.live, cfg.schedule, costs)


def test_the_options_are_every_rate_down_to_min_fps_with_every_sweep_the_latency_holds() -> None:
    cfg = config(max_latency_ms=400.0)
    options = _options(cfg.live, cfg.schedule)
    # A frame waits sweep + 2 frames, in at most 3/4 of the budget (300 ms): at 30 frames/s 9
    # frames (sweeps to 7), at 25 frames/s 7 (to 5), at 22.5 and 20 frames/s 6 (4); at 15
    # frames/s not even a sweep of 4 (min_fps: nothing lower).
    expected = [(Fraction(1), s) for s in range(4, 8)]
    expected += [(Fraction(5, 6), s) for s in range(4, 6)]
    expected += [(Fraction(3, 4), 4), (Fraction(2, 3), 4)]
    assert options == expected
    # min_fps unset: the camera's rate only.
    assert {share for share, _ in _options(config(min_fps=0.0).live, cfg.schedule)} == {1}


def test_cheap_passes_take_every_frame_with_the_shortest_sweep() -> None:
    chosen = pace(Costs(whole_ms=2.0, fine_ms=8.0))
    c = chosen.choice
    assert (c.share, c.fps, c.sweep, c.keeps_up, c.reason) == (1, 30.0, 4, True, "calibrated")
    assert list(chosen.changes) == [c]
    assert all(chosen.take() for _ in range(300))
    assert chosen.words().startswith("taking 30 of 30 frames/s, fine sweep over 4 frame(s)")


def test_costlier_passes_take_every_frame_over_the_sweep_that_fits() -> None:
    # 30 x (5 x (1.4 + 1) + 80 / sweep) ms a second (the whole-frame pass on every frame, and
    # each frame's other work, OVERHEAD) must fit in SHARE of it: sweep 5 (840 ms), not 4 (960).
    costs = Costs(whole_ms=5.0, fine_ms=80.0)
    assert costs.per_second(30.0, 5, 1) == pytest.approx(840.0)
    assert costs.per_second(30.0, 4, 1) > SHARE * 1000.0 >= costs.per_second(30.0, 5, 1)
    c = pace(costs).choice
    assert (c.share, c.sweep, c.keeps_up) == (1, 5, True)


def test_passes_too_costly_for_every_frame_take_an_even_share_of_them() -> None:
    # Even the longest sweep cannot hold 30, 25, 22.5 or 20 frames/s (20 x 48 ms is 960 ms
    # before any fine pass); 15 with a sweep of 9 can: 15 x (48 + 100 / 9) = 887 ms.
    costs = Costs(whole_ms=20.0, fine_ms=100.0)
    chosen = pace(costs)
    c = chosen.choice
    assert (c.share, c.fps, c.sweep, c.keeps_up) == (Fraction(1, 2), 15.0, 9, True)
    taken = [chosen.take() for _ in range(300)]
    assert sum(taken) == 150
    assert taken == [False, True] * 150  # every other frame: evenly, never two gaps in a row
    assert "taking 15 of 30 frames/s, fine sweep over 9 frame(s)" in chosen.words()
    assert "measured: whole frame 20 ms, fine regions 100 ms a sweep" in chosen.words()


def test_two_frames_of_three_are_taken_evenly() -> None:
    # 20 frames/s with a sweep of 12: 20 x (36 + 100 / 12) = 887 ms; 22.5 x 36 is 810 ms before
    # any fine pass, and 22.5 x 100 / 12 more is too much.
    chosen = pace(Costs(whole_ms=15.0, fine_ms=100.0))
    assert chosen.choice.share == Fraction(2, 3)
    taken = [chosen.take() for _ in range(300)]
    assert sum(taken) == 200
    assert all(sum(taken[i : i + 3]) == 2 for i in range(0, 298))


def test_when_nothing_fits_the_cheapest_option_is_chosen_and_said_not_to_keep_up() -> None:
    chosen = pace(Costs(whole_ms=100.0, fine_ms=400.0))
    c = chosen.choice
    # The last option: 15 frames/s, and the longest sweep its latency holds (9 + 2 frames).
    assert (c.share, c.sweep, c.keeps_up) == (Fraction(1, 2), 9, False)
    assert (c.share, c.sweep) == chosen.options[-1]
    assert sum(chosen.take() for _ in range(300)) == 150


def test_a_detector_without_passes_takes_every_frame() -> None:
    c = pace(None).choice
    assert (c.share, c.sweep, c.keeps_up) == (1, 4, True)


def _losing(report: RunReport, taken: int, lost: int, cause: str = "overload") -> None:
    """`taken` more frames taken from the source, `lost` of them lost for `cause`."""
    report.frames_in += taken
    report.failures[cause] += lost


def test_losing_more_than_two_percent_moves_to_a_slower_option() -> None:
    chosen = pace(Costs(whole_ms=2.0, fine_ms=8.0))
    chosen.changes.clear()
    t0 = time.monotonic()
    report = RunReport()
    _losing(report, 50, 1)  # 2 %: kept
    assert chosen.check(report, now=t0 + 2.0) is None
    assert (chosen.choice.share, chosen.choice.sweep) == (1, 4)
    _losing(report, 60, 1)
    assert chosen.check(report, now=t0 + 3.0) is None  # looks every 2 s only
    _losing(report, 60, 4, "late")  # 5 of the last 120: 4.2 %
    slower = chosen.check(report, now=t0 + 4.0)
    assert slower is not None and slower.reason == "losing-frames" and not slower.keeps_up
    assert chosen.options.index((slower.share, slower.sweep)) > 0
    assert list(chosen.changes) == [slower] and chosen.choice == slower
    assert not chosen.cannot


def test_the_frames_still_on_their_way_after_a_change_are_not_held_against_it() -> None:
    # Frames taken at the faster option come out late after the change; the next look starts
    # the new option's count, so they neither slow it again nor make it "cannot keep up".
    chosen = _one_option_after_a_change()
    report, t0 = chosen.report, chosen.t0
    _losing(report, 60, 20)  # leftovers of the faster option, lost in the first look
    assert chosen.check(report, now=t0 + 4.0) is None
    _losing(report, 300, 3)  # the new option: 1 %
    assert chosen.check(report, now=t0 + 6.0) is None
    assert chosen.check(report, now=t0 + 12.0) is None
    assert not chosen.cannot
    # ...while a new option that loses for itself is still judged.
    _losing(report, 300, 30)
    assert chosen.check(report, now=t0 + 14.0) is not None and chosen.cannot


class _Changed(Pace):
    report: RunReport
    t0: float


def _one_option_after_a_change() -> _Changed:
    """A pace of two options (30 then 15 frames/s) that has just moved to its last."""
    cfg = Config.model_validate(
        {
            "live": {"fps": 30.0, "min_fps": 15.0, "max_latency_ms": 1000.0},
            "schedule": {"sweep": 4, "whole_every": 1},
        }
    )
    chosen = _Changed(cfg.live, cfg.schedule, Costs(2.0, 8.0))
    chosen.options = [chosen.options[0], chosen.options[-1]]
    chosen.report, chosen.t0 = RunReport(), time.monotonic()
    _losing(chosen.report, 60, 10)
    assert chosen.check(chosen.report, now=chosen.t0 + 2.0) is not None
    assert chosen.choice == chosen.changes[-1] and not chosen.cannot
    return chosen


def test_a_slower_option_is_chosen_by_what_the_run_managed() -> None:
    # A tenth of the frames lost: the next option is the first that costs at most what the
    # current one managed (its cost less the tenth, with a tenth to spare), not merely the next.
    costs = Costs(whole_ms=2.0, fine_ms=8.0)
    chosen = pace(costs)
    before = chosen.choice
    t0 = time.monotonic()
    report = RunReport()
    _losing(report, 60, 6)
    slower = chosen.check(report, now=t0 + 2.0)
    assert slower is not None and slower.reason == "losing-frames"
    managed = costs.per_second(before.fps, before.sweep, 1) * 0.9 * 0.9
    assert costs.per_second(slower.fps, slower.sweep, 1) <= managed
    earlier = chosen.options[1 : chosen.options.index((slower.share, slower.sweep))]
    assert all(costs.per_second(float(sh) * 30.0, sw, 1) > managed for sh, sw in earlier)
    assert len(earlier) > 1


def test_the_longest_sweep_at_the_camera_rate_is_tried_before_a_lower_rate() -> None:
    # 30 x (5 x 2.4 + 80 / sweep): sweep 5 fits (840 ms a second). Four frames in ten lost:
    # by the plan no sweep at 30 frames/s costs what that run managed (453 ms), yet the run
    # first goes to the longest sweep at 30 (the first seconds of a run cost more than the
    # rest); only a loss there lowers the rate.
    costs = Costs(whole_ms=5.0, fine_ms=80.0)
    chosen = pace(costs)
    assert (chosen.choice.share, chosen.choice.sweep) == (1, 5)
    t0 = time.monotonic()
    report = RunReport()
    _losing(report, 60, 24)
    longer = chosen.check(report, now=t0 + 2.0)
    assert longer is not None and (longer.share, longer.sweep) == (1, 12)
    assert costs.per_second(30.0, 12, 1) > costs.per_second(30.0, 5, 1) * 0.6 * 0.9
    _losing(report, 60, 0)  # the frames of the faster option, on their way: not judged
    assert chosen.check(report, now=t0 + 4.0) is None
    _losing(report, 60, 12)
    lower = chosen.check(report, now=t0 + 6.0)
    assert lower is not None and lower.share < 1 and lower.reason == "losing-frames"


def _one_option() -> Pace:
    """A pace with one option (30 frames/s, sweep 4): it starts at its last."""
    cfg = Config.model_validate({"live": {"fps": 30.0}, "schedule": {"sweep": 4, "whole_every": 1}})
    chosen = Pace(cfg.live, cfg.schedule, Costs(2.0, 8.0))
    assert len(chosen.options) == 1
    return chosen


def test_losing_more_than_two_percent_of_a_minute_at_the_last_option_cannot_keep_up() -> None:
    # 30 frames/s: a minute takes 1,800 frames and may lose 36. At 5 % (3 of every 60), the
    # 37th frame is lost 26 s in: the minute cannot keep up whatever comes after.
    chosen = _one_option()
    chosen.changes.clear()
    t0 = time.monotonic()
    report = RunReport()
    for k in range(1, 13):
        _losing(report, 60, 3)
        assert chosen.check(report, now=t0 + 2.0 * k) is None
        assert not chosen.cannot
    _losing(report, 60, 3)
    judged = chosen.check(report, now=t0 + 26.0)
    assert judged is not None and chosen.cannot
    assert judged.reason == "cannot-keep-up" and not judged.keeps_up
    assert list(chosen.changes) == [judged]
    assert chosen.status()["cannot_keep_up"] is True
    assert chosen.status()["reason"] == "cannot-keep-up"
    # Said once.
    _losing(report, 60, 3)
    assert chosen.check(report, now=t0 + 28.0) is None and list(chosen.changes) == [judged]


def test_a_bad_few_seconds_in_a_good_minute_keep_up() -> None:
    # 30 of the first 150 frames lost (20 %: a crowd, a start), then none for a minute: 30 of
    # 1,950 over the run, 1.5 %, and at most 30 of any minute's 1,800. Not "cannot keep up".
    chosen = _one_option()
    t0 = time.monotonic()
    report = RunReport()
    _losing(report, 150, 30)
    for k in range(1, 32):
        chosen.check(report, now=t0 + 2.0 * k)
        assert not chosen.cannot
        _losing(report, 60, 0)
    assert chosen.check(report, now=t0 + 65.0, final=True) is None
    assert not chosen.cannot


@pytest.mark.parametrize("lost", [0, 2, 5])
def test_two_percent_or_less_at_the_last_option_keeps_up(lost: int) -> None:
    chosen = _one_option()
    t0 = time.monotonic()
    report = RunReport()
    for k in range(1, 26):  # 50 s, 250 frames taken in all, `lost` of them lost evenly
        _losing(report, 10, 1 if lost and k % (25 // lost) == 0 else 0)
        chosen.check(report, now=t0 + 2.0 * k)
    assert not chosen.cannot
    assert chosen.check(report, now=t0 + 51.0, final=True) is None
    assert not chosen.cannot and chosen.choice.reason == "calibrated"
    if lost == 5:  # exactly 2 %: one frame more lost is more (the run, shorter than a
        # minute, is judged whole at its end)
        _losing(report, 0, 1)
        judged = chosen.check(report, now=t0 + 53.0, final=True)
        assert chosen.cannot and judged is not None and judged.reason == "cannot-keep-up"


def test_frames_not_taken_are_not_counted_as_taken() -> None:
    # 60 source frames, 30 of them let pass (decimated), 1 lost: 1 of 30 taken, 3.3 % (of the
    # source's 60 it would be 1.7 %).
    chosen = _one_option()
    t0 = time.monotonic()
    report = RunReport()
    for k in range(1, 4):
        report.frames_in += 60
        report.not_taken += 30
        report.failures["overload"] += 1
        chosen.check(report, now=t0 + 2.0 * k, final=k == 3)
    assert chosen.cannot


def test_the_last_option_is_judged_by_its_own_losses_only() -> None:
    # Two options: 30 and 25 frames/s. The first loses 10 % and is left after 2 s; the second
    # loses nothing for the next 6 s. It keeps up.
    cfg = Config.model_validate({"live": {"fps": 30.0, "min_fps": 25.0}, "schedule": {"sweep": 4}})
    chosen = Pace(cfg.live, cfg.schedule, Costs(2.0, 8.0))
    assert len(chosen.options) == 2
    t0 = time.monotonic()
    report = RunReport()
    _losing(report, 60, 6)
    assert chosen.check(report, now=t0 + 2.0) is not None  # moved to the last option
    for k in range(2, 5):
        _losing(report, 50, 0)
        chosen.check(report, now=t0 + 2.0 * k)
    assert not chosen.cannot
