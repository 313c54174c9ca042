"""A live profile's search schedule on an annotated clip, in memory and without a clock.

The frames go through the same `vouch()` and `redact_held()` as `veil run`, with the profile's
[schedule] (or `--sweep`) and a live run's window, but no deadline: every frame is vouched for,
so the share of face-frames protected is what the schedule gives when the device keeps up (what
a live run loses to dropped frames, or to frames not taken, comes on top). Scored with `veil
eval`'s face-detail measure.

    .venv/bin/python tests/tools/live_window.py ../shared/eval/live configs/bodycam.toml
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edge.capture import VideoFileSource  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.detect import build_detector  # noqa: E402
from edge.evaluate.evalset import load_evalset  # noqa: E402
from edge.evaluate.metrics import longest_run  # noqa: E402
from edge.evaluate.protection import is_protected  # noqa: E402
from edge.redact import Redactor  # noqa: E402
from edge.run import Realtime, RunReport, redact_held, vouch  # noqa: E402
from edge.run.schedule import Schedule  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--sweep", type=int, help="override [schedule] sweep")
    args = parser.parse_args()
    cfg = load_config(args.config)
    realtime = replace(Realtime.of(cfg.live), max_latency_ms=1e9)
    evalset = load_evalset(args.set_dir)
    for item in evalset.videos:
        truth = {f.index: f.faces for f in item.frames}
        detector = build_detector(cfg.detector)
        schedule = Schedule.of(detector, cfg.schedule, args.sweep)
        frames = list(VideoFileSource(args.set_dir / item.file).frames())
        before = {f.index: f.pixels.copy() for f in frames}
        report = RunReport()
        held = vouch(frames, detector, report, cfg.track, schedule=schedule, realtime=realtime)
        protected = total = 0
        leaks: list[bool] = []
        for out in redact_held(held, Redactor(cfg.redact), report):
            leak = False
            for box in truth.get(out.index, []):
                total += 1
                ok = is_protected(before[out.index], out.pixels, box)
                protected += ok
                leak |= not ok
            leaks.append(leak)
        share = protected / total if total else 1.0
        print(
            f"{item.file}: sweep {schedule.sweep}, whole every {schedule.whole_every}: "
            f"{protected}/{total} face-frames protected ({share:.2%}), "
            f"{sum(leaks)} frames with a leak, longest run {longest_run(leaks)}"
        )


if __name__ == "__main__":
    main()
