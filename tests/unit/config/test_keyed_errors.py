"""A problem a section's own check finds between settings (a rate below another, a latency budget
too short for the schedule) is reported on the line of the setting to change, as `veil
check-config` reports a bad value: `FILE:LINE: section.key: words`, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import veil
from edge.config import config_problems


def checked(tmp_path: Path, text: str) -> tuple[Path, int, str]:
    path = tmp_path / "profile.toml"
    path.write_text(text, encoding="utf-8")
    result = veil("check-config", path)
    return path, result.returncode, result.stderr


def test_min_fps_above_fps_is_reported_on_the_min_fps_line(tmp_path: Path) -> None:
    text = '# a camera\n[live]\nsource = "file:x.mp4"\nfps = 10\n\nmin_fps = 20\nqueue = 2\n'
    path, code, err = checked(tmp_path, text)
    assert code == 2
    assert err == (
        f"veil: error: {path}:6: live.min_fps: must not exceed fps (10): it is the lowest "
        "rate taken\n"
    )
    assert config_problems(path) == [err.removeprefix("veil: error: ").rstrip("\n")]
    path.write_text(text.replace("min_fps = 20", "min_fps = 10"), encoding="utf-8")
    assert config_problems(path) == []


def test_a_latency_budget_too_short_for_the_sweep_is_reported_on_its_line(
    tmp_path: Path,
) -> None:
    # At 30 frames/s a sweep of 8 holds a frame 10 frames: 333 ms.
    text = '[schedule]\nsweep = 8\n\n[live]\nfps = 30\nmax_latency_ms = 100\nlate = "drop"\n'
    path, code, err = checked(tmp_path, text)
    assert code == 2
    assert err.startswith(f"veil: error: {path}:6: live.max_latency_ms: 100 ms is shorter ")
    assert "333 ms" in err and err.count("\n") == 1
    for budget, ok in ((333, False), (334, True)):
        path.write_text(text.replace("= 100", f"= {budget}"), encoding="utf-8")
        assert (config_problems(path) == []) is ok, budget


def test_the_budget_must_also_hold_the_sweep_at_min_fps(tmp_path: Path) -> None:
    # 400 ms holds 12 frames at 30 frames/s, but at 10 frames/s a sweep of 4 takes 600 ms.
    text = "[live]\nfps = 30\nmin_fps = 10\nmax_latency_ms = 400\n[schedule]\nsweep = 4\n"
    path, code, err = checked(tmp_path, text)
    assert code == 2
    assert err.startswith(f"veil: error: {path}:4: live.max_latency_ms: ")
    assert "at 10 frames/s" in err and "600 ms" in err


@pytest.mark.parametrize(
    "text, line, key",
    [
        ("[schedule]\nsweep = 4\nmax_sweep = 2\n", 3, "schedule.max_sweep"),
        ("[schedule]\nmax_sweep = 2\nsweep = 4\n", 2, "schedule.max_sweep"),
        ('[schedule]\nsweep = 4\norder = "changed"\nlongest_gap = 3\n', 4, "schedule.longest_gap"),
    ],
)
def test_schedule_bounds_below_the_sweep_are_reported_on_their_line(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    path, code, err = checked(tmp_path, text)
    assert code == 2
    assert err.startswith(f"veil: error: {path}:{line}: {key}: must be 0 or at least sweep (4)")
    assert err.count("\n") == 1


def test_a_valid_schedule_passes(tmp_path: Path) -> None:
    text = "[schedule]\nsweep = 4\nmax_sweep = 12\n[live]\nfps = 30\nmin_fps = 15\n"
    path, code, err = checked(tmp_path, text)
    assert code == 0 and "error" not in err
