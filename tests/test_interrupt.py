"""Stopping a run (systemd's SIGTERM, Ctrl-C's SIGINT) mid-video leaves nothing half-written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
