"""Search sparse, on the real CenterFace video detector's passes over a 720p picture of real
faces: each fine region once in every `sweep` frames, a frame vouched for only once every part of
it was searched at or after it, changed regions first in a fixed camera's order, and no region
left unsearched longer than `longest_gap`."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from conftest import Scene
from edge.config import Config, DetectorConfig
from edge.detect import build_detector
from edge.detect.base import FaceDetector
from edge.detect.passes import Pass
from edge.run.schedule import Plan, Schedule
from edge.track.flow import grey


@pytest.fixture(scope="module")
def centerface() -> FaceDetector:
    return build_detector(Config().detector)


@pytest.fixture(scope="module")
def still(group_scene: Scene) -> np.ndarray:
    return grey(group_scene.image)


def fine(plan: Plan) -> list[Pass]:
    return [p for p in plan.passes if p.kind == "fine"]


def test_the_video_detector_covers_a_720p_frame_in_a_whole_pass_and_fine_regions(
    centerface: FaceDetector,
) -> None:
    schedule = Schedule(centerface, sweep=4)
    passes = schedule.passes(720, 1280)
    assert [p.kind for p in passes] == ["whole"] + ["fine"] * 4
    assert not schedule.dense


@pytest.mark.parametrize("sweep", [1, 2, 3, 4, 8])
def test_each_fine_region_is_searched_exactly_once_in_any_sweep_consecutive_frames(
    centerface: FaceDetector, still: np.ndarray, sweep: int
) -> None:
    schedule = Schedule(centerface, sweep=sweep)
    regions = [p for p in schedule.passes(720, 1280) if p.kind == "fine"]
    plans = []
    for n in range(5 * sweep):
        plan = schedule.plan(n, still)
        schedule.searched(plan)
        plans.append(plan)
        assert [p.kind for p in plan.passes].count("whole") == 1  # whole_every = 1
    for first in range(len(plans) - sweep + 1):
        seen = [p for plan in plans[first : first + sweep] for p in fine(plan)]
        assert sorted(seen, key=regions.index) == regions, (sweep, first)
    # The cost is spread: no frame runs more than its share of the regions.
    assert max(len(fine(p)) for p in plans) == -(-len(regions) // sweep)


def test_the_whole_frame_pass_runs_every_whole_every_frames(
    centerface: FaceDetector, still: np.ndarray
) -> None:
    schedule = Schedule(centerface, sweep=1, whole_every=3)
    wholes, plans = [], []
    for n in range(9):
        plans.append(schedule.plan(n, still))
        schedule.searched(plans[-1])
        wholes.append(any(p.kind == "whole" for p in plans[-1].passes))
        # Every fine region is searched on every frame (sweep 1); the whole frame only every
        # third: a frame is vouched for by the next whole pass, not before.
        assert [schedule.vouched(p) for p in plans] == [k <= n // 3 * 3 for k in range(n + 1)]
    assert wholes == [True, False, False] * 3


def test_a_frame_is_vouched_for_once_every_region_was_searched_at_or_after_it(
    centerface: FaceDetector, still: np.ndarray
) -> None:
    sweep = 4
    schedule = Schedule(centerface, sweep=sweep)
    plans: list[Plan] = []
    vouched_at: dict[int, int] = {}
    for n in range(12):
        plans.append(schedule.plan(n, still))
        schedule.searched(plans[-1])
        for k, plan in enumerate(plans):
            if k not in vouched_at and schedule.vouched(plan):
                vouched_at[k] = n
    # Frame k's regions are searched on frames k .. k + sweep - 1: vouched for on the last.
    assert vouched_at == {k: k + sweep - 1 for k in range(12 - sweep + 1)}


def test_a_search_that_did_not_run_vouches_for_nothing(
    centerface: FaceDetector, still: np.ndarray
) -> None:
    schedule = Schedule(centerface, sweep=2)
    first, second = schedule.plan(0, still), schedule.plan(1, still)
    schedule.searched(first)
    assert not schedule.vouched(first)  # half of its regions wait for frame 1
    # Frame 1's search failed: `searched` is never called for it.
    third = schedule.plan(2, still)
    schedule.searched(third)
    assert not schedule.vouched(first) and not schedule.vouched(second)
    assert not schedule.vouched(third)
    schedule.searched(schedule.plan(3, still))
    assert schedule.vouched(first) and schedule.vouched(second) and schedule.vouched(third)


def test_the_sweep_searches_faces_a_plan_answers_for(
    centerface: FaceDetector, group_scene: Scene
) -> None:
    # The passes a sweep runs on a still picture find every face that one of them answers for:
    # the real detector, run pass by pass as a run runs it.
    schedule = Schedule(centerface, sweep=4)
    picture = group_scene.image
    found: list[np.ndarray] = []
    answered = set()
    for n in range(4):
        plan = schedule.plan(n, grey(picture))
        found += list(centerface.search(picture, plan.passes, plan.cycle).xyxy)  # type: ignore[attr-defined]
        for k, (x, y, w, h) in enumerate(group_scene.faces):
            if plan.covered(np.array([x, y, x + w, y + h])):
                answered.add(k)
    assert answered == set(range(len(group_scene.faces)))
    for x, y, w, h in group_scene.faces:
        centre = np.array([x + w / 2, y + h / 2])
        assert any(b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3] for b in found), (
            x,
            y,
            w,
            h,
        )


def _only(regions: list[Pass], i: int) -> tuple[int, int]:
    """The columns of fine region `i` that no other region reaches into (they overlap)."""
    x0, _, x1, _ = regions[i].region
    left = regions[i - 1].region[2] if i > 0 else x0
    right = regions[i + 1].region[0] if i + 1 < len(regions) else x1
    return left, right


def _changed(base: np.ndarray, n: int, x0: int, x1: int) -> np.ndarray:
    """`base` with a block of noise that moves a little each frame, between columns x0 and x1."""
    picture = base.copy()
    rng = np.random.default_rng(n)
    x = x0 + (n * 13) % (x1 - x0 - 80)
    picture[300:380, x : x + 80] = rng.integers(0, 256, (80, 80), dtype=np.uint8)
    return picture


def test_changed_order_an_unchanged_region_vouches_and_a_changed_one_goes_first(
    centerface: FaceDetector, still: np.ndarray
) -> None:
    sweep = 4
    schedule = Schedule(centerface, sweep=sweep, order="changed", longest_gap=16)
    regions = [p for p in schedule.passes(720, 1280) if p.kind == "fine"]
    # The first cycle: nothing was searched before, so everything is changed; one region a
    # frame, as the sweep allows.
    for n in range(sweep):
        plan = schedule.plan(n, still)
        assert len(fine(plan)) == 1
        schedule.searched(plan)
    # Still: every region looks as at its last search, and vouches for the frame by itself.
    plan = schedule.plan(4, still)
    assert plan.unchanged == frozenset(range(4))
    schedule.searched(plan)
    assert schedule.vouched(plan)
    # Region 2 changes (inside it only): it is searched next, whatever the turn would be, and
    # the frame is vouched for at once (the other regions are still as searched).
    moved = _changed(still, 5, *_only(regions, 2))
    plan = schedule.plan(5, moved)
    assert plan.unchanged == frozenset({0, 1, 3})
    assert fine(plan) == [regions[2]]
    assert not schedule.vouched(plan)  # not yet searched
    schedule.searched(plan)
    assert schedule.vouched(plan)
    # Regions 1 and 2 change: only one is searched (the one searched longest ago: 1); the frame
    # waits for the other.
    both = _changed(moved, 6, *_only(regions, 1))
    both = _changed(both, 7, *_only(regions, 2))
    plan = schedule.plan(6, both)
    assert plan.unchanged == frozenset({0, 3})
    assert fine(plan) == [regions[1]]
    schedule.searched(plan)
    assert not schedule.vouched(plan)
    later = schedule.plan(7, both)
    assert fine(later) == [regions[2]]
    schedule.searched(later)
    assert schedule.vouched(plan) and schedule.vouched(later)


def _gaps(plans: list[Plan], regions: list[Pass], last: int) -> dict[int, int]:
    """Per region: the most frames between its searches (from frame 0, up to frame `last`)."""
    at: dict[int, list[int]] = defaultdict(list)
    for plan in plans:
        for p in fine(plan):
            at[regions.index(p)].append(plan.index)
    return {
        i: max(np.diff([-1, *at[i], last + 1]).tolist()) if at[i] else last + 2
        for i in range(len(regions))
    }


@pytest.mark.parametrize("longest_gap", [6, 16])
def test_changed_order_leaves_no_region_unsearched_longer_than_longest_gap(
    centerface: FaceDetector, still: np.ndarray, longest_gap: int
) -> None:
    sweep = 4
    schedule = Schedule(centerface, sweep=sweep, order="changed", longest_gap=longest_gap)
    regions = [p for p in schedule.passes(720, 1280) if p.kind == "fine"]
    # A still picture: each region once a sweep, each frame vouched for as it is searched.
    plans = []
    for n in range(100):
        plans.append(schedule.plan(n, still))
        schedule.searched(plans[-1])
        if n >= sweep:
            assert schedule.vouched(plans[-1]), n
    assert max(_gaps(plans, regions, 99).values()) <= longest_gap
    # Two regions change on every frame and would take every search: the two still ones are
    # still searched, at most `longest_gap` frames apart.
    schedule = Schedule(centerface, sweep=sweep, order="changed", longest_gap=longest_gap)
    plans = []
    for n in range(100):
        picture = still
        for k in (1, 2):
            picture = _changed(picture, 2 * n + k, *_only(regions, k))
        plans.append(schedule.plan(n, picture))
        schedule.searched(plans[-1])
    gaps = _gaps(plans, regions, 99)
    assert gaps[0] <= longest_gap and gaps[3] <= longest_gap, gaps
    # ...and no more often than they must: the changed regions get the rest.
    assert gaps[0] >= longest_gap - 1 and gaps[3] >= longest_gap - 1, gaps
    # (each of them every other frame, but for the frames the two still ones are due)
    assert max(gaps[1], gaps[2]) <= 4, gaps


@pytest.mark.parametrize("detector", ["blazeface", "still centerface"])
def test_a_dense_detector_searches_every_frame_whole_and_vouches_at_once(
    still: np.ndarray, detector: str
) -> None:
    if detector == "blazeface":
        found = build_detector(DetectorConfig.model_validate({"backend": "blazeface"}))
    else:
        found = build_detector(Config().detector, still=True)
    schedule = Schedule(found, sweep=4, order="changed")
    assert schedule.dense and schedule.passes(720, 1280) == []
    for n in range(6):
        plan = schedule.plan(n, still)
        assert plan.passes == []
        assert not schedule.vouched(plan)  # not before its own search ran
        schedule.searched(plan)
        assert schedule.vouched(plan)
