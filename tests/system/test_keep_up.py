"""`veil run` keeping up with its camera, end to end: it measures its detector's passes at start,
says what it takes, takes an even share of the frames when it cannot search every one, counts the
frames it let pass apart from those lost, logs its choices, and on a device too slow even for the
profile's `min_fps` says that it cannot keep up, is degraded and exits 4, having recorded nothing
clear. The clip of real faces is played as a camera; the slow device is a tenth of one CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ROOT, Clip, veil
from edge.config import load_config
from helpers.cpu_quota import spawned_on_slice
from helpers.outputs import assert_protected, source_frames
from helpers.runs import assert_verifies, played, records, segments

# CenterFace on the whole 720p frame, on one thread, with no fine regions: a pass takes tens of
# milliseconds on the fastest CPU core and hundreds on a slow one, so no CPU searches 30 frames a
# second within half its time and the run must take an even share of them. It finds all four
# faces of the sample clip, 30 to 160 px, on every frame it searches (sweep 1: each frame in full).
DECIMATED = """
[detector]
threads = 1
[detector.centerface]
max_side = 1280
max_downscale = 1.0
fine_scale = 0.0
[schedule]
sweep = 1
whole_every = 1
[live]
fps = 30.0
min_fps = 1.0
max_latency_ms = 3000.0
queue = 4
[record]
segment_seconds = 2.0
fragment_seconds = 0.5
preset = "ultrafast"
min_free_bytes = 0
"""
BODYCAM = ROOT / "configs" / "bodycam.toml"
COUNTS = ("frames_in", "frames_out", "dropped", "obscured", "not_taken")


def recorded(out: Path) -> list[tuple[int, np.ndarray]]:
    """(source frame index, picture) of every frame the run recorded, in order."""
    frames = []
    for segment in segments(out):
        with av.open(str(segment)) as container:
            for frame in container.decode(video=0):
                frames.append((round(float(frame.time) * 30), frame.to_ndarray(format="bgr24")))
    return frames


def test_a_run_that_cannot_search_every_frame_takes_an_even_share_and_counts_the_rest(
    sample_clip: Clip, tmp_path: Path
) -> None:
    profile = tmp_path / "decimated.toml"
    profile.write_text(DECIMATED, encoding="utf-8")
    out = tmp_path / "rec"
    proc = veil(*played(profile, sample_clip, out, "--realtime", "--loop", "--duration", "8"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    said = [line for line in lines[:3] if line.startswith("veil: keeping up: taking ")]
    assert said, lines[:3]
    assert "of 30 frames/s, fine sweep over 1 frame(s)" in said[0]
    assert "measured: whole frame" in said[0]

    status = json.loads((out / "status.json").read_text())
    schedule = status["schedule"]
    assert schedule["source_fps"] == 30.0 and schedule["sweep"] == 1
    assert 1.0 <= schedule["fps_taken"] <= 15.0, schedule  # no CPU takes all 30 (see DECIMATED)
    assert schedule["cannot_keep_up"] is False

    recs = records(out / "veil-audit.jsonl")
    chosen = [r for r in recs if r["type"] == "schedule"]
    assert chosen and chosen[0]["reason"] == "calibrated", chosen
    assert all(r["source_fps"] == 30.0 and r["sweep"] == 1 for r in chosen)
    assert float(chosen[0]["whole_ms"]) > 0 and chosen[0]["fine_ms"] == 0.0
    assert f"taking {chosen[0]['fps']:.3g} of 30 frames/s" in said[0]
    assert chosen[-1]["fps"] == schedule["fps_taken"]

    # Every source frame is taken or not, and every frame taken is recorded or dropped (an
    # obscured frame is recorded). The log and the status file agree.
    stop = recs[-1]
    assert stop["type"] == "run_stop" and stop["status"] == "ok"
    assert {k: stop[k] for k in COUNTS} == {k: status[k] for k in COUNTS}
    assert status["not_taken"] > 0
    assert status["frames_in"] == status["frames_out"] + status["dropped"] + status["not_taken"]
    # The summaries count since the one before: they add up to the stop's counts.
    summaries = [r for r in recs if r["type"] == "summary"]
    assert {k: sum(int(r[k]) for r in summaries) for k in COUNTS} == {k: stop[k] for k in COUNTS}
    # The share taken is the one chosen (or, had the run slowed down, between it and the last).
    taken = status["frames_in"] - status["not_taken"]
    first, last = (float(r["fps"]) / 30.0 for r in (chosen[0], chosen[-1]))
    assert last * status["frames_in"] - 1 <= taken <= first * status["frames_in"] + 1

    # Evenly: no two frames recorded closer than the share allows; each frame once.
    frames = recorded(out)
    indices = [i for i, _ in frames]
    assert len(frames) == status["frames_out"] >= 2
    assert len(set(indices)) == len(indices)
    assert min(np.diff(indices)) >= int(30.0 / float(chosen[0]["fps"]))
    # Nothing recorded shows a face.
    sources = source_frames(sample_clip)
    for index, picture in frames:
        assert_protected(index, picture, sources, sample_clip)
    assert_verifies(out)


@pytest.mark.slow
def test_a_tenth_of_a_core_cannot_keep_up_and_says_so(sample_clip: Clip, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    args = played(
        BODYCAM, sample_clip, out, "--realtime", "--loop",
        "--duration", "20",
    )  # fmt: skip
    seen_degraded: list[str] = []
    with spawned_on_slice(0.1, *args) as proc:
        deadline = time.monotonic() + 150.0
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                status = json.loads((out / "status.json").read_text())
            except (FileNotFoundError, ValueError):
                status = {}
            if status.get("state") == "degraded":
                seen_degraded += [c for c in status["degraded_because"] if "cannot keep up" in c]
            time.sleep(0.25)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 4, stderr
    lines = stderr.splitlines()
    assert lines[0].startswith("veil: keeping up: taking "), lines
    assert any(line.startswith("veil: error: cannot keep up:") for line in lines), lines
    assert seen_degraded, "status.json never said the run cannot keep up"
    final = json.loads((out / "status.json").read_text())
    assert final["schedule"]["cannot_keep_up"] is True
    assert final["schedule"]["reason"] == "cannot-keep-up"

    recs = records(out / "veil-audit.jsonl")
    judged = [r for r in recs if r["type"] == "schedule" and r["reason"] == "cannot-keep-up"]
    assert len(judged) == 1 and judged[0]["keeps_up"] is False
    # It slowed as far as the profile lets it: its min_fps.
    assert judged[0]["fps"] == load_config(BODYCAM).live.least_fps
    stop = recs[-1]
    assert stop["type"] == "run_stop"
    assert {k: stop[k] for k in COUNTS} == {k: final[k] for k in COUNTS}
    assert stop["frames_in"] == stop["frames_out"] + stop["dropped"] + stop["not_taken"]
    assert stop["dropped"] > 0

    # What it did record (if anything) shows no face; the folder verifies.
    sources = source_frames(sample_clip)
    frames = recorded(out)
    assert len(frames) == final["frames_out"]
    for index, picture in frames:
        assert_protected(index, picture, sources, sample_clip)
    assert_verifies(out)
