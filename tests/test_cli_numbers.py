"""Numbers on the command line: NaN, infinity and out-of-range values are a usage error on one
line (exit 2) as argparse reads them, never a traceback later, and nothing is written."""

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
