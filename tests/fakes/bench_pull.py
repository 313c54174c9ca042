"""What pulling a frame out of picamera2 costs Veil: per frame, the copy of main (make_array), the
copy of lores (make_array) and lores' YUV420 → BGR conversion, all as Picamera2Source does them,
against the FAKE picamera2 (the copies are the same NumPy copies as the real make_array's, out of
ordinary memory rather than a dma-buf mapping).

    taskset -c 0 .venv/bin/python tests/fakes/bench_pull.py [--frames 150] [--real]

`--real` uses the installed picamera2 and a real camera instead (on a Raspberry Pi).

`cold` first streams 64 MiB through the CPU caches, as a buffer the ISP has just written by DMA
is not in them; `warm` does not. CPU time is this thread's own (time.thread_time), so the fake
camera thread sharing the core is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.capture.live import RunClock
from edge.capture.picamera2_source import Picamera2Source, yuv420_to_bgr
from edge.config import LiveConfig

_SCRATCH = np.ones(64 * 1024 * 1024, np.uint8)


def evict() -> None:
    _SCRATCH[::64] += 1  # one write a cache line: every line of 64 MiB goes through the caches


def timed(step: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.thread_time()
    result = step(*args)
    return result, (time.thread_time() - start) * 1e3


def run(source: Picamera2Source, frames: int, cold: bool) -> dict[str, list[float]]:
    w, h = source.lores_width, source.lores_height
    costs: dict[str, list[float]] = {"main": [], "lores": [], "convert": [], "total": []}
    for _ in range(frames):
        request = source._cam.capture_request(wait=2.0)
        if cold:
            evict()
        try:
            stamp, meta = timed(lambda r: r.get_metadata().get("SensorTimestamp"), request)
            _, clock = timed(source._sensor_clock.captured, stamp)
            _, main = timed(request.make_array, "main")
            yuv, lores = timed(request.make_array, "lores")
        finally:
            request.release()
        _, convert = timed(yuv420_to_bgr, yuv, w, h)
        for key, value in (("main", main), ("lores", lores), ("convert", convert)):
            costs[key].append(value)
        costs["total"].append(meta + clock + main + lores + convert)
    return costs


def unpadded_convert(w: int, h: int, frames: int) -> list[float]:
    """The conversion when the lores rows carry no padding (an aligned lores on a Pi)."""
    picture = np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)
    i420 = cv2.cvtColor(picture, cv2.COLOR_BGR2YUV_I420)
    costs = []
    for _ in range(frames):
        evict()
        costs.append(timed(yuv420_to_bgr, i420, w, h)[1])
    return costs


def report(name: str, values: list[float], budget: float) -> str:
    p50, p95 = statistics.median(values), float(np.percentile(values, 95))
    share = 100 * p50 / budget
    return f"  {name:<8} {p50:6.2f} ms median {p95:6.2f} ms p95 ({share:4.1f}% of the budget)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--real", action="store_true", help="the installed picamera2, not the fake")
    args = parser.parse_args()
    if args.real:  # python puts this script's folder, the fake's, first on sys.path
        here = Path(__file__).resolve().parent
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    cfg = LiveConfig()  # 1280x720 main, 640-wide lores, 30 fps
    budget = 1e3 / cfg.fps
    clock = RunClock()
    source = Picamera2Source(0, cfg, clock)
    try:
        print(
            f"main {source.width}x{source.height} RGB888, lores {source.lores_width}x"
            f"{source.lores_height} YUV420 (stride {source._cam.camera_config['lores']['stride']}),"
            f" {cfg.fps:g} fps: budget {budget:.1f} ms/frame; cv2 threads {cv2.getNumThreads()}"
        )
        run(source, 10, cold=False)  # first touches, allocations
        for cold in (False, True):
            print("cold caches:" if cold else "warm caches:")
            for key, values in run(source, args.frames, cold).items():
                print(report(key, values, budget))
        unpadded = unpadded_convert(source.lores_width, source.lores_height, args.frames)
        print("cold caches, lores rows unpadded:")
        print(report("convert", unpadded, budget))
        camera = source._cam
        if hasattr(camera, "frames_skipped"):
            print(
                f"fake camera: {camera.frames_captured} exposures, {camera.frames_skipped} skipped"
            )
    finally:
        source.close()


if __name__ == "__main__":
    main()
