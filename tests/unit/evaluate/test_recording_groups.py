"""Per-group tallies of a recorded labelled clip: each face-frame counted under its subject's
labels, at every size and at 15 px and more; faces leaked counted once each; the worst and best
group named only among groups with enough faces."""

from __future__ import annotations

from edge.evaluate.groups import MIN_RANK_N
from edge.evaluate.recording_groups import GroupTally, render_groups, worst_and_gap


def _tally() -> GroupTally:
    subjects = {
        f"a{n}": {"race_group": "A", "gender": "Female", "age_group": "20-29"}
        for n in range(MIN_RANK_N)
    }
    subjects |= {f"b{n}": {"race_group": "B", "gender": "Male"} for n in range(MIN_RANK_N)}
    subjects["c0"] = {"race_group": "C", "gender": "Male"}
    tally = GroupTally(subjects)
    for n in range(MIN_RANK_N):
        for frame in range(10):
            tally.add(f"a{n}", (0, 0, 20, 20), True)
            # B: one face leaks on two frames, at 14 px (under the 15 px floor).
            leak = n == 0 and frame < 2
            tally.add(f"b{n}", (0, 0, 14 if leak else 20, 20), not leak)
    tally.add("c0", (0, 0, 30, 30), False)  # one face: never ranked
    return tally


def test_face_frames_and_faces_are_tallied_per_group_and_size_floor() -> None:
    out = _tally().as_dict()
    every, large = out["0px"]["race_group"], out["15px"]["race_group"]
    assert every["A"]["face_frames"] == 10 * MIN_RANK_N and every["A"]["recall"] == 1.0
    assert every["B"]["protected"] == 10 * MIN_RANK_N - 2
    assert every["B"]["faces_leaked"] == 1 and every["B"]["faces"] == MIN_RANK_N
    assert large["B"]["face_frames"] == 10 * MIN_RANK_N - 2 and large["B"]["faces_leaked"] == 0
    assert out["0px"]["age_group"]["(none)"]["faces"] == MIN_RANK_N + 1  # B and C have none
    lo, hi = every["B"]["interval"]
    assert lo < every["B"]["recall"] < hi


def test_the_worst_group_and_the_gap_are_among_groups_with_enough_faces() -> None:
    every = _tally().as_dict()["0px"]["race_group"]
    spread = worst_and_gap(every)
    assert spread == {"worst": "B", "best": "A", "gap_points": 1.0}  # C (0 %) has one face
    lines = render_groups(_tally().as_dict())
    assert lines[0] == "by perceived race (every face):"
    assert "  worst B, best A: a gap of 1.00 points" in lines
