"""A progress bar with frames/s on a terminal; on a pipe or in a log, only the one-line summary."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import Clip, veil


def test_quiet_when_stderr_is_not_a_terminal(sample_clip: Clip, tmp_path: Path) -> None:
    result = veil("redact", sample_clip.path, "-o", tmp_path / "out.mp4")
    assert result.returncode == 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "60 frame(s)" in lines[0] and "frames/s" in lines[0]
    assert lines[1].startswith("audit log: ")


@pytest.mark.parametrize("rows, cols", [(30, 100), (0, 0)], ids=["sized", "no-size-reported"])
def test_progress_bar_with_frame_rate_on_a_terminal(
    sample_clip: Clip, tmp_path: Path, rows: int, cols: int
) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "redact",
            str(sample_clip.path),
            "-o",
            str(tmp_path / "o.mp4"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the child exits
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    text = seen.decode(errors="replace")
    assert "frame/s" in text  # the bar's rate
    assert "/60" in text  # and its total, from the container's frame count
