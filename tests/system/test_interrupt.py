"""Stopping a run (systemd's SIGTERM, Ctrl-C's SIGINT) mid-video leaves nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import veil
from edge.audit import DEFAULT_LOG_NAME, verify_log
from edge.sample import write_sample


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    write_sample(path, width=640, height=360, seconds=20.0)
    return path


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 130), (signal.SIGINT, 130)])
def test_a_stopped_run_leaves_no_partial_output(
    long_clip: Path, tmp_path: Path, sig: int, code: int
) -> None:
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "redact", str(long_clip), "-o", str(out)],
        stderr=subprocess.PIPE,
        text=True,
        # A crash in native code (it has happened once in a loaded suite) prints its stacks.
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        # As from a terminal: a shell's background job inherits SIGINT ignored, which Python
        # (and Veil) honours, so the test must not depend on how it was itself started.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Wait until the run is writing its hidden partial file, then stop it.
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.veil-*.partial.mp4")):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == "veil: interrupted; unfinished outputs were removed"
    # Only the audit log is left, closed: it verifies and says the run was interrupted.
    assert [p.name for p in tmp_path.iterdir()] == [DEFAULT_LOG_NAME]
    verdict = verify_log(tmp_path / DEFAULT_LOG_NAME)
    assert verdict.ok, verdict.problems
    assert [run.status for run in verdict.runs] == ["interrupted"]
    assert not verdict.files


def test_a_killed_run_leaves_a_partial_that_verify_names_and_the_next_run_removes(
    long_clip: Path, astronaut: np.ndarray, tmp_path: Path
) -> None:
    """SIGKILL (the OOM killer, a power cut) gives Veil no chance to clean up: the hidden partial
    stays. `verify --media` names it as one, and the next run into the folder removes it."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "redact", str(long_clip), "-o", str(out / "clip.mp4")],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(out.glob(".clip.veil-*.partial.mp4")):
        assert proc.poll() is None, "the run ended before it was killed"
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    time.sleep(0.5)
    proc.kill()
    proc.wait(timeout=60)
    (partial,) = out.glob(".clip.veil-*.partial.mp4")
    log = out / DEFAULT_LOG_NAME

    # The log ends inside the killed run (the next run acknowledges that), and the partial:
    assert [p.message for p in verify_log(log, media=out).problems][1:] == [
        f"{partial.name} is the hidden partial of an output a killed run left unfinished: the "
        "next `veil redact` into this folder removes it, or delete it"
    ]

    face = tmp_path / "face.png"
    assert cv2.imwrite(str(face), astronaut)
    again = veil("redact", face, "-o", out / "face.png")
    assert again.returncode == 0, again.stderr
    assert "veil: removed 1 unfinished output(s) left by a run that was killed" in again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["face.png", DEFAULT_LOG_NAME]
    verdict = verify_log(log, media=out)
    assert verdict.ok, verdict.problems
    assert [run.status for run in verdict.runs] == [None, "ok"]  # the killed run has no stop


def test_a_partial_of_a_running_writer_is_left_alone(astronaut: np.ndarray, tmp_path: Path) -> None:
    """The control: a partial whose writer still runs (this test's process) is not removed."""
    out = tmp_path / "out"
    out.mkdir()
    busy = out / f".other.veil-{os.getpid():08x}1a2b3c4d.partial.png"
    busy.write_bytes(b"being written")
    face = tmp_path / "face.png"
    assert cv2.imwrite(str(face), astronaut)
    result = veil("redact", face, "-o", out / "face.png")
    assert result.returncode == 0, result.stderr
    assert busy.read_bytes() == b"being written"
    assert "removed" not in result.stderr
