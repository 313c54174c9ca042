"""The live status says why a run is degraded (issue 22): a real StatusBoard fed a real
RunReport's failures, its snapshot, the file `veil status` reads, and the lines on stderr."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import veil
from edge.run import RunReport, StatusBoard
from edge.run.degraded import WINDOW_S, RecentFaults


def test_frames_failing_closed_are_named_in_the_status_and_once_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = RunReport()
    board = StatusBoard(tmp_path / "status.json", report, tmp_path, "file:x.mp4", "0" * 32)
    first = board.snapshot()
    assert (first["state"], first["degraded_because"]) == ("running", [])

    for _ in range(3):
        report.fail("late", dropped=True)
    report.fail("detector: RuntimeError", dropped=False)
    snap = board.snapshot()
    assert snap["state"] == "degraded"
    assert snap["degraded_because"] == [
        "frames fully obscured: the detector failed (RuntimeError) (1 so far)",
        "frames came too late to be vouched for: the detector is slower than [live] "
        "max_latency_ms allows (3 so far)",
    ]
    report.fail("late", dropped=True)  # the same cause again: no second line
    assert "(4 so far)" in board.snapshot()["degraded_because"][1]
    assert capsys.readouterr().err.splitlines() == [
        "veil: degraded: frames fully obscured: the detector failed (RuntimeError)",
        "veil: degraded: frames came too late to be vouched for: the detector is slower than "
        "[live] max_latency_ms allows",
    ]

    board.write()
    written = json.loads(board.path.read_text())["degraded_because"]
    shown = veil("status", board.path)
    assert shown.returncode == 0
    rows = [line.split(None, 1) for line in shown.stdout.splitlines()]
    assert rows[0][0] == "state" and rows[0][1].startswith("degraded")
    assert [text for name, text in rows if name == "because"] == written and len(written) == 2


def test_a_full_disk_is_one_cause_and_prints_no_second_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = RunReport()
    board = StatusBoard(tmp_path / "status.json", report, tmp_path, "file:x.mp4", "0" * 32)
    board.storage_full = True  # `veil run` prints its own line for this
    report.fail("disk-full", dropped=True)
    snap = board.snapshot()
    assert snap["degraded_because"] == ["the disk is full: recording is paused until there is room"]
    assert capsys.readouterr().err == ""


def test_a_fault_is_a_cause_for_the_window_after_its_last_frame() -> None:
    faults = RecentFaults()
    assert faults.update(Counter(overload=2), now=100.0) == ["overload"]
    assert faults.update(Counter(overload=5), now=105.0) == []  # still going: said already
    assert faults.recent(105.0 + WINDOW_S - 0.1) == {"overload": 5}
    assert faults.recent(105.0 + WINDOW_S) == {}
    assert faults.update(Counter(overload=5), now=120.0) == []  # no new frame, no cause
    assert faults.update(Counter(overload=6), now=121.0) == ["overload"]  # back: said again
