"""A `veil run` as a device runs it, for the tests that start one: a fast profile, the
arguments that play the sample clip as a camera, a child process to stop by signal, and readers
of what the run leaves (segments, the audit log, the status file)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av

from conftest import Clip, veil

FAST = """
[detector]
backend = "blazeface"
[detector.blazeface]
model = "short"
tiles = 0
[live]
max_latency_ms = 400.0
[record]
segment_seconds = 2.0
fragment_seconds = 0.5
preset = "ultrafast"
min_free_bytes = 0
"""


def segments(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.mp4") if not p.name.startswith("."))


def decode_times(path: Path) -> list[float]:
    """Every frame's time; raises if any part of the file does not decode."""
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def records(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def played(profile: Path, clip: Clip, out: Path, *flags: str) -> tuple[str | Path, ...]:
    """`veil run`'s arguments for the sample clip played as a camera into `out`."""
    return (
        "run",
        "--config",
        profile,
        "--source",
        f"file:{clip.path}",
        "--output-dir",
        out,
        *flags,
    )


def verify(out: Path) -> subprocess.CompletedProcess[str]:
    """`veil audit verify` of a run's log against the recordings beside it."""
    return veil("audit", "verify", out / "veil-audit.jsonl", "--media", out)


def assert_verifies(out: Path) -> None:
    check = verify(out)
    assert check.returncode == 0, check.stdout + check.stderr


def spawn(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_frames(status: Path, frames: int, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads(status.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        if int(data.get("frames_out", 0)) >= frames:
            return data
        time.sleep(0.2)
    raise AssertionError(f"no {frames} frames recorded in {timeout} s")
