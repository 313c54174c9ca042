"""`veil bench --live`: each live profile as a device runs it, on a clip played in real time as a
camera, pinned to N cores. It reports what decides whether a profile is usable live: capture-to-
sink latency, the share of frames dropped or obscured, and the CPU it takes (x264 included); and
where each frame's time goes: its decode, detect, track, redact and encode, p50 and mean.

Each profile runs as its own `veil run` child process (so pinning, threads and memory are its
own), one after the other in one invocation, so the numbers are comparable on a noisy machine.
One core of an x86-64 desktop stands in for a Raspberry Pi 5 (an estimate: one AVX-512 core peaks
near 190 GFLOP/s FP32, the Pi 5's four Cortex-A76 near 150); that is `--cpus 1`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edge import __version__
from edge.bench.client import PreviewClient, free_port
from edge.errors import UsageError
from edge.sample import write_sample

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
LIVE_PROFILES = ("bodycam.toml", "doorway.toml")
STAGES = ("decode", "detect", "track", "redact", "encode")


def _pinned(cpus: int) -> set[int]:
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        raise UsageError("--cpus needs Linux (sched_setaffinity)") from None
    if not 1 <= cpus <= len(allowed):
        raise UsageError(f"--cpus {cpus}: this process may use {len(allowed)} core(s)")
    return set(allowed[:cpus])


def _one(
    profile: Path, clip: Path, cpus: set[int], seconds: float, tmp: Path, client: str | None
) -> dict[str, Any]:
    out = tmp / (profile.stem + (f"-{client}" if client else ""))
    port = free_port() if client else 0
    cmd = [
        sys.executable, "-m", "edge", "run", "--config", str(profile), "--source",
        f"file:{clip}", "--realtime", "--loop", "--duration", f"{seconds:g}",
        "--output-dir", str(out), "--key-dir", str(tmp / "keys"),
    ]  # fmt: skip
    if client:
        cmd += ["--preview", f"127.0.0.1:{port}"]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    # The client reads from this process, outside the pinned cores: a phone, not the device.
    reader = PreviewClient(port, tmp / "keys", slow=client == "slow") if client else None
    if reader is not None:
        reader.start()
    _, stderr = proc.communicate()
    wall = time.monotonic() - started
    if reader is not None:
        reader.stop()
    if proc.returncode not in (0, 3):
        last = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise UsageError(f"{profile.name}: veil run failed ({last[0]})")
    status = json.loads((out / "status.json").read_text(encoding="utf-8"))
    frames = max(1, int(status["frames_in"]))
    return {
        "profile": profile.name + (f" +{client} client" if client else ""),
        "client_bytes": reader.received if reader is not None else None,
        "frames_in": status["frames_in"],
        "frames_out": status["frames_out"],
        "dropped_share": status["dropped"] / frames,
        "obscured_share": status["obscured"] / frames,
        "fail_closed": status["fail_closed"],
        "latency_ms": status["run_latency_ms"],
        "detect_ms": status["run_detect_ms"],
        "stage_ms": status.get("run_stage_ms") or {},
        "wall_s": round(wall, 2),
        "segments": status["segments"],
    }


def _stage(stages: dict[str, Any], name: str) -> str:
    ms = stages.get(name) or {}
    text = "-" if ms.get("p50") is None else f"{ms['p50']:.1f}/{ms['mean']:.1f}"
    return f"{text:>12}"


def _cpu_seconds() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def live_bench_command(
    configs: list[Path] | None,
    cpus: int,
    seconds: float,
    size: tuple[int, int],
    clip: Path | None,
    json_path: Path | None,
    clients: tuple[str, ...] = (),
) -> int:
    profiles = configs or [CONFIGS / name for name in LIVE_PROFILES]
    for profile in profiles:
        if not profile.is_file():
            raise UsageError(f"profile not found: {profile}")
    if clip is not None and not clip.is_file():
        raise UsageError(f"clip not found: {clip}")
    pinned = _pinned(cpus)
    rows = []
    with tempfile.TemporaryDirectory(prefix="veil-bench-live-") as folder:
        tmp = Path(folder)
        if clip is None:
            width, height = size
            clip = tmp / "clip.mp4"
            print(f"generating a {width}x{height} 30 fps clip of real faces ...", file=sys.stderr)
            write_sample(clip, width=width, height=height, seconds=min(seconds, 20.0))
        for profile in profiles:
            for client in (None, *clients):
                with_ = f" with a {client} preview client" if client else ""
                print(
                    f"{profile.name}: {seconds:g} s live on {cpus} core(s){with_} ...",
                    file=sys.stderr,
                )
                before = _cpu_seconds()
                row = _one(profile, clip, pinned, seconds, tmp, client)
                row["cpu_cores"] = round((_cpu_seconds() - before) / row["wall_s"], 2)
                rows.append(row)
    print(
        f"veil {__version__}, {platform.machine()}, clip {clip.name}, pinned to {cpus} core(s) "
        f"{sorted(pinned)}, real time, {seconds:g} s per profile"
    )
    head = f"{'profile':<28}{'lat p50':>9}{'lat p99':>9}{'dropped':>9}{'obscured':>9}{'CPU':>7}"
    print(head + f"{'det p50':>9}")
    for r in rows:
        lat, det = r["latency_ms"] or {}, r["detect_ms"] or {}
        print(
            f"{r['profile']:<28}{lat.get('p50') or 0:>7.0f}ms{lat.get('p99') or 0:>7.0f}ms"
            f"{r['dropped_share']:>9.1%}{r['obscured_share']:>9.1%}{r['cpu_cores']:>7.2f}"
            f"{det.get('p50') or 0:>7.1f}ms"
        )
    print(f"\n{'ms per frame':<28}" + "".join(f"{name:>12}" for name in STAGES) + "  (p50/mean)")
    for r in rows:
        print(f"{r['profile']:<28}" + "".join(_stage(r["stage_ms"], name) for name in STAGES))
    if json_path is not None:
        json_path.write_text(json.dumps({"cpus": cpus, "results": rows}, indent=2) + "\n")
    return 0
