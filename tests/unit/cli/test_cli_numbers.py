"""Numbers the commands read, on the command line and in a status file: NaN, infinity and
out-of-range values are a usage error on one line (exit 2), never a traceback later, and nothing
is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import veil


@pytest.mark.parametrize(
    "args",
    [
        *(
            ["sample", "OUT.mp4", f"--seconds={v}"]
            for v in ("nan", "inf", "-inf", "1e999", "0", "-1")
        ),
        *(["run", f"--duration={v}"] for v in ("nan", "inf", "-inf", "1e300", "0", "-5", "NaN")),
        *(["bench", f"--seconds={v}"] for v in ("nan", "inf", "0")),
    ],
    ids=lambda args: " ".join(args),
)
def test_a_bad_number_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "OUT.mp4"
    result = veil(*(str(out) if a == "OUT.mp4" else a for a in args), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("veil: error: argument")
    assert "must be a number of seconds from" in result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_a_good_number_still_runs(tmp_path: Path) -> None:
    out = tmp_path / "s.mp4"
    result = veil("sample", out, "--seconds", "0.2", "--size", "64x48")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_status_file_with_nan_or_infinity_is_one_line_and_exit_2(
    tmp_path: Path, constant: str
) -> None:
    """Python's json reads these though JSON has no such numbers, and Veil never writes them."""
    path = tmp_path / "status.json"
    path.write_text(f'{{"state": "running", "disk_free_bytes": {constant}}}', encoding="utf-8")
    result = veil("status", path)
    assert result.returncode == 2
    assert result.stderr == (
        f"veil: error: {path}: not a readable status file ({constant} is not a number Veil "
        "writes)\n"
    )


def test_a_status_file_with_numbers_of_the_wrong_kind_shows_dashes(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    data = '{"state": "running", "disk_free_bytes": "12", "cpu_temp_c": true, "fail_closed": 5}'
    path.write_text(data, encoding="utf-8")
    result = veil("status", path)
    assert result.returncode == 0, result.stderr
    shown = {line[:12].strip(): line[13:] for line in result.stdout.splitlines()}
    assert shown["disk free"] == shown["cpu temp"] == "-" and shown["fail-closed"] == "none"
