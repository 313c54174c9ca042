"""The live run's status file: what a person (or a watchdog) needs to know the camera is
recording, replaced atomically every second and once more at stop.

It holds counts, timings and states, like the audit log, and never a picture or a box. A URL's
credentials never reach it: the source appears by its label.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge.run.degraded import RecentFaults, degraded_because, fault_lines
from edge.run.pace import Pace
from edge.run.report import RunReport, Timings

State = Literal["running", "degraded", "stopped"]
_RECENT = 300  # frames behind the percentiles shown (10 s at 30 frames/s)
_THERMAL = Path("/sys/class/thermal")


def cpu_temp_c(root: Path = _THERMAL) -> float | None:
    """The CPU's temperature where the board reports one (a Pi, a Jetson), else None."""
    zones = sorted(root.glob("thermal_zone*"))
    for zone in sorted(zones, key=lambda z: "cpu" not in _read(z / "type").lower()):
        text = _read(zone / "temp")
        if text.strip().lstrip("-").isdigit():
            return round(int(text) / 1000.0, 1)
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _summary(values: list[float], second: str = "p99") -> dict[str, float | None]:
    """p50 and `second` ("p99" or "mean") of `values`, in ms to 0.1; None before any."""
    if not values:
        return {"p50": None, second: None}
    other = np.mean(values) if second == "mean" else np.percentile(values, 99)
    return {"p50": round(float(np.percentile(values, 50)), 1), second: round(float(other), 1)}


def _recent(timings: Timings) -> dict[str, float | None]:
    return _summary(list(timings.values)[-_RECENT:])


def _whole(timings: Timings) -> dict[str, float | None]:
    return _summary(list(timings.values))


def _stages(report: RunReport, recent: bool) -> dict[str, dict[str, float | None]]:
    """Each stage's time per frame, p50 and mean: of the last `_RECENT` frames, or the run's."""
    return {
        name: _summary(list(t.values)[-_RECENT:] if recent else list(t.values), "mean")
        for name, t in report.stages().items()
    }


class StatusBoard:
    """The run's state, fed by the loop's events; `write()` publishes it to `path`."""

    def __init__(
        self,
        path: Path,
        report: RunReport,
        folder: Path,
        source: str,
        run: str,
        max_latency_ms: float | None = None,
    ) -> None:
        self.path = path
        self.max_latency_ms = max_latency_ms
        self.report = report
        self.folder = folder
        self.source = source
        self.run = run
        self.started = time.monotonic()
        self.started_utc = _utc()
        # The source, once open: a camera's Reconnecting keeps `connected` (False until the
        # camera first opens) and `losses`; a file has neither and is never lost.
        self.source_state: object | None = None
        self.storage_full = False
        self.segments = 0  # closed and logged
        self.sink_state: object | None = None  # the recording, once open: is a segment open
        # The onnxruntime execution provider CenterFace runs on, once the detector is built.
        self.detector_provider: str | None = None
        self.pace: Pace | None = None  # what the run chose to keep up
        self.state: State = "running"
        # Side outputs (the preview, the stream out) by name: their counts, shown as `outputs`.
        self.outputs: dict[str, Callable[[], dict[str, int]]] = {}
        self.body = b"{}"  # the last status written, as the preview serves it
        self._faults = RecentFaults()
        self._fps: deque[tuple[float, int]] = deque(maxlen=6)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, Any]:
        r = self.report
        now = time.monotonic()
        fresh = self._faults.update(r.tally()[1], now)
        self._fps.append((now, r.frames_in))
        (t0, n0), (t1, n1) = self._fps[0], self._fps[-1]
        because: list[str] = []
        if self.state != "stopped":
            because = degraded_because(
                connected=self._connected(),
                problem=getattr(self.source_state, "problem", None),
                storage_full=self.storage_full,
                faults=self._faults.recent(now),
                cannot_keep_up=self.pace is not None and self.pace.cannot,
            )
            self.state = "degraded" if because else "running"
            for line in fault_lines(fresh):
                print(line, file=sys.stderr)
        try:
            free: int | None = shutil.disk_usage(self.folder).free
        except OSError:
            free = None
        detect = _recent(r.detect)
        slow = (
            self.max_latency_ms is not None
            and detect["p50"] is not None
            and detect["p50"] > self.max_latency_ms
        )
        return {
            "state": self.state,
            "degraded_because": because,
            # Why the state is what it is, for a person; None when all is well.
            "warning": (
                f"the detector takes {detect['p50']} ms a frame, more than max_latency_ms "
                f"{self.max_latency_ms:g}: frames cannot be vouched for in time and are lost"
                if slow
                else None
            ),
            "run": self.run,
            "source": self.source,
            "source_connected": self._connected(),
            "source_losses": int(getattr(self.source_state, "losses", 0)),
            "started_utc": self.started_utc,
            "updated_utc": _utc(),
            "uptime_s": round(now - self.started, 1),
            "frames_in": r.frames_in,
            "frames_out": r.frames_out,
            "dropped": r.dropped,
            "obscured": r.obscured,
            "fail_closed": dict(r.failures),
            "faces": r.faces,
            "latency_ms": _recent(r.latency),
            "detect_ms": detect,
            "detector_provider": self.detector_provider,
            # The frame rate taken and the sweep chosen to keep up, and why (edge.run.pace).
            "schedule": self.pace.status() if self.pace is not None else None,
            "not_taken": r.not_taken,
            # The whole run's (its last 100,000 frames), once it has stopped.
            "run_latency_ms": _whole(r.latency) if self.state == "stopped" else None,
            "run_detect_ms": _whole(r.detect) if self.state == "stopped" else None,
            # decode, detect, track, redact, encode: ms per frame (decode: the source's CPU).
            "stage_ms": _stages(r, recent=True),
            "run_stage_ms": _stages(r, recent=False) if self.state == "stopped" else None,
            "camera_fps": round((n1 - n0) / (t1 - t0), 2) if t1 > t0 else None,
            "segments": self.segments,
            "segment_open": bool(getattr(self.sink_state, "segment_open", False)),
            "storage_full": self.storage_full,
            "disk_free_bytes": free,
            "cpu_temp_c": cpu_temp_c(),
            "outputs": {name: stats() for name, stats in list(self.outputs.items())},
        }

    def _connected(self) -> bool:
        return bool(getattr(self.source_state, "connected", True))

    def write(self) -> None:
        """Replace the file atomically: a reader sees the old status or the new, never half."""
        with self._lock:
            body = json.dumps(self.snapshot(), indent=2, sort_keys=True) + "\n"
            self.body = body.encode("utf-8")
            temp = self.path.with_name(f".{self.path.name}.tmp")
            try:
                # Made afresh, never opened through a link planted under its name (which would
                # have Veil write wherever the link points).
                temp.unlink(missing_ok=True)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(body)
                os.replace(temp, self.path)
            except OSError:
                temp.unlink(missing_ok=True)  # a full disk: the recording matters more

    def start(self, every_s: float = 1.0, tick: Callable[[], None] | None = None) -> None:
        """Write every `every_s`; `tick` runs there too (the audit trail's summaries, which
        must come even when no frame gets through)."""

        def loop() -> None:
            while not self._stop.wait(every_s):
                self.write()
                if tick is not None:
                    tick()

        self.write()
        self._thread = threading.Thread(target=loop, name="veil-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.state = "stopped"
        self.write()


def _utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
