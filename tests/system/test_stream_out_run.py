"""`veil run --stream-out` end to end: the redacted stream written to a pipe and pushed over
RTSP to FFmpeg's own receiver, checked against the recording (the same frames, its own
timestamps) and against the source frames with the face-detail measure; and a receiver killed
mid-run, which the recording must not notice."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from conftest import Clip, veil
from edge.bench.client import free_port
from helpers.outputs import (
    FAST,
    THOROUGH,
    assert_protected,
    slow_run_ended,
    source_frames,
    write_profile,
)
from helpers.runs import records, spawn, verify
from helpers.stream import NO_PTS, Receiver


def decoded(container: av.container.InputContainer) -> list[tuple[float, np.ndarray]]:
    return [
        (float(frame.time), frame.to_ndarray(format="bgr24")) for frame in container.decode(video=0)
    ]


def recorded_times(out: Path) -> list[float]:
    return sorted(
        float(frame.time)
        for seg in sorted(out.glob("[0-9]*.mp4"))
        for frame in av.open(str(seg)).decode(video=0)
    )


def assert_stream_matches(
    frames: list[tuple[float, np.ndarray]],
    out: Path,
    clip: Clip,
    *,
    every: bool,
    timed: bool = True,
) -> None:
    """The stream's frames are the recording's (same times, up to the muxer's constant offset)
    and each keeps every true face of its source frame protected. `timed=False`: a stream with
    no timestamps (raw MJPEG), matched to the recording frame for frame, in order."""
    times = recorded_times(out)
    assert frames and times
    on_record = [round(t * 30) for t in times]
    if timed:
        offset = frames[0][0] - times[0]
        indices = [round((t - offset) * 30) for t, _ in frames]
        assert all(
            abs(t - offset - i / 30) < 0.002 for (t, _), i in zip(frames, indices, strict=True)
        )
    else:
        assert len(frames) == len(on_record)
        indices = on_record
    assert set(indices) <= set(on_record)  # nothing the recording does not hold
    if every:
        assert len(indices) == len(set(indices)) == len(on_record)
    sources = source_frames(clip)
    for index, (_, picture) in zip(indices, frames, strict=True):
        assert_protected(index, picture, sources, clip)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["mpegts", "mjpeg"])
def test_stream_out_to_stdout_is_a_valid_stream_of_the_recorded_frames(
    sample_clip: Clip, tmp_path: Path, form: str
) -> None:
    profile = write_profile(
        tmp_path, "thorough", THOROUGH + f'[stream_out]\nstdout_format = "{form}"\n'
    )
    out = tmp_path / "rec"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            "--config",
            str(profile),
            "--source",
            f"file:{sample_clip.path}",
            "--realtime",
            "--output-dir",
            str(out),
            "--key-dir",
            str(tmp_path / "keys"),
            "--stream-out",
            "-",
        ],  # fmt: skip
        capture_output=True,
        timeout=300,
    )
    assert slow_run_ended(ran.returncode, ran.stderr.decode()), ran.stderr.decode()
    with av.open(io.BytesIO(ran.stdout), format=form) as container:
        frames = decoded(container)
    assert_stream_matches(frames, out, sample_clip, every=True, timed=form == "mpegts")
    recs = records(out / "veil-audit.jsonl")
    start = next(r for r in recs if r["type"] == "output_start")
    assert (start["output"], start["bound"], start["protocol"]) == ("stream", "stdout", form)
    stop = next(r for r in recs if r["type"] == "output_stop")
    assert stop["frames"] == len(frames) and stop["dropped"] == 0
    shown = veil("audit", "show", out / "veil-audit.jsonl")
    assert f"stdout, {form}: {len(frames)} frames, 0 dropped" in shown.stdout, shown.stdout


def received_indices(saved: dict[str, Any], out: Path) -> list[tuple[int, np.ndarray]]:
    """(source frame index, picture) of each frame the receiver decoded with a timestamp,
    placed on the recording's frames: the receiver's clock is the stream's less a constant (its
    RTCP mapping, which need not be a whole frame: half a frame was seen), so one exact shift
    must place every frame on a recorded one. Times are kept exact, in frame ticks, and never
    rounded before the shift."""
    base = Fraction(int(saved["num"]), int(saved["den"]))
    timed = [
        (int(pts) * base * 30, picture)
        for pts, picture in zip(saved["pts"], saved["frames"], strict=True)
        if pts != NO_PTS
    ]
    on_record = {round(t * 30) for t in recorded_times(out)}
    assert timed and on_record
    shifts = {index - tick for index in on_record for tick, _ in timed}
    shift = max(
        (s for s in shifts if abs(s) <= 30),  # within a second: the recording's own clock
        key=lambda s: sum(tick + s in on_record for tick, _ in timed),
    )
    assert all(tick + shift in on_record for tick, _ in timed)
    placed = [(int(tick + shift), picture) for tick, picture in timed]
    return placed


@pytest.mark.slow
def test_rtsp_stream_out_carries_the_recorded_frames_redacted(
    sample_clip: Clip, tmp_path: Path
) -> None:
    profile = write_profile(tmp_path, "thorough", THOROUGH)
    out, port = tmp_path / "rec", free_port()
    receiver = Receiver(port, tmp_path / "received.npz")
    ran = veil(
        "run", "--config", profile, "--source", f"file:{sample_clip.path}", "--realtime",
        "--output-dir", out, "--key-dir", tmp_path / "keys",
        "--stream-out", f"rtsp://127.0.0.1:{port}/veil",
    )  # fmt: skip
    assert slow_run_ended(ran.returncode, ran.stderr), ran.stderr
    assert f"{port}" not in ran.stderr + ran.stdout  # the URL is never printed
    saved = receiver.finish()
    placed = received_indices(saved, out)
    status = json.loads((out / "status.json").read_text())
    assert len(saved["pts"]) >= 0.9 * status["frames_out"] >= 5
    sources = source_frames(sample_clip)
    for index, picture in placed:
        assert_protected(index, picture, sources, sample_clip)
    recs = records(out / "veil-audit.jsonl")
    start = next(r for r in recs if r["type"] == "output_start")
    assert (start["output"], start["bound"], start["protocol"]) == ("stream", "loopback", "rtsp")
    stop = next(r for r in recs if r["type"] == "output_stop")
    assert stop["frames"] >= len(saved["pts"]) and stop["reconnects"] == 0


@pytest.mark.slow
def test_a_killed_rtsp_receiver_costs_the_recording_nothing_and_is_reconnected(
    sample_clip: Clip, tmp_path: Path
) -> None:
    profile = write_profile(
        tmp_path, "fast", FAST + "[stream_out]\nreconnect_min_s = 0.2\nreconnect_max_s = 0.5\n"
    )
    out, port = tmp_path / "rec", free_port()
    first = Receiver(port, tmp_path / "first.npz")
    proc = spawn(
        "run", "--config", profile, "--source", f"file:{sample_clip.path}", "--realtime",
        "--loop", "--duration", "10", "--output-dir", out, "--key-dir", tmp_path / "keys",
        "--stream-out", f"rtsp://127.0.0.1:{port}/veil",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while first.frames < 30 and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.1)
        assert first.frames >= 30, first.lines[-3:]
        first.kill()  # mid-run: the recording must not notice
        time.sleep(1.0)
        second = Receiver(port, tmp_path / "second.npz")
        deadline = time.monotonic() + 30
        while second.frames < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert second.frames >= 30, "the stream out did not reconnect"
    finally:
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    second.finish()
    status = json.loads((out / "status.json").read_text())
    assert status["dropped"] == 0, status["fail_closed"]
    assert status["frames_out"] == status["frames_in"] >= 250
    recs = records(out / "veil-audit.jsonl")
    kinds = [r["type"] for r in recs]
    assert kinds.index("output_lost") < kinds.index("output_restored") < kinds.index("output_stop")
    stop = recs[kinds.index("output_stop")]
    assert stop["reconnects"] >= 1 and stop["dropped"] > 0
    assert "stream out lost" in stderr and f"{port}" not in stderr
    assert verify(out).returncode == 0
