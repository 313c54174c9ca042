"""Source specs (`file:PATH`, `v4l2:/dev/video0`, `rtsp://…`, `http(s)://…`, `gst:PIPELINE`,
`picamera2[:N]`) and the plain registry of the live backends that open them.

Each backend module imports its hardware or optional library only when it is opened, and a
missing one fails with a one-line install hint. A URL's credentials never reach a label: logs,
the status file and error lines show `label`, never `target`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.capture.live import LiveSource, RunClock, SourceEvents
from edge.capture.urls import gst_label, masked, safe_url
from edge.config import LiveConfig
from edge.errors import UsageError

CAMERA_KINDS = frozenset({"v4l2", "rtsp", "http", "gst", "picamera2"})


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "file", "v4l2", "rtsp", "http", "gst", "picamera2"
    target: str  # a path, a device, a URL (credentials included), a pipeline, a camera number

    @property
    def label(self) -> str:
        """What may be shown and logged: a URL without its user, password or query (each
        present shows as `***`)."""
        if self.kind in {"rtsp", "http"}:
            return safe_url(self.target)
        if self.kind == "gst":
            return gst_label(self.target)
        if self.kind == "file":
            return f"file:{Path(self.target).name}"
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class OpenOptions:
    realtime: bool = False  # file: play at the file's own rate (a camera always is)
    loop: bool = False  # file: replay from the start, times still increasing


def parse_spec(text: str) -> SourceSpec:
    """A spec as given on the command line or in `[live] source`; UsageError if unknown."""
    text = text.strip()
    lower = text.lower()
    if lower.startswith("rtsp://") or lower.startswith("rtsps://"):
        return SourceSpec("rtsp", text)
    if lower.startswith("http://") or lower.startswith("https://"):
        return SourceSpec("http", text)
    if lower == "picamera2" or lower.startswith("picamera2:"):
        number = text.partition(":")[2] or "0"
        if not number.isdigit():
            raise UsageError(f"source picamera2:{number}: the camera number must be 0, 1, ...")
        return SourceSpec("picamera2", number)
    kind, sep, rest = text.partition(":")
    if sep and kind in {"file", "v4l2", "gst"} and rest:
        return SourceSpec(kind, rest)
    known = "file:PATH, v4l2:/dev/videoN, rtsp://..., http(s)://..., gst:PIPELINE, picamera2[:N]"
    raise UsageError(f"unknown source {masked(text)[:80]!r} (known: {known})")


def check_backend(spec: SourceSpec) -> None:
    """The install hint (UsageError) of a backend whose library is missing, found before any
    folder, key or log is made and before a line says the camera is recording: unlike an absent
    camera, a missing library does not come back by retrying."""
    if spec.kind == "picamera2":
        from edge.capture.picamera2_source import INSTALL_HINT

        if importlib.util.find_spec("picamera2") is None:
            raise UsageError(INSTALL_HINT)
    elif spec.kind == "gst":
        from edge.capture.opencv_camera import NO_GSTREAMER, has_gstreamer

        if not has_gstreamer():
            raise UsageError(NO_GSTREAMER)


Opener = Callable[[SourceSpec, LiveConfig, RunClock, OpenOptions], LiveSource]


def _file(spec: SourceSpec, cfg: LiveConfig, clock: RunClock, opts: OpenOptions) -> LiveSource:
    from edge.capture.file_live import FileLiveSource

    return FileLiveSource(Path(spec.target), clock, realtime=opts.realtime, loop=opts.loop)


def _v4l2(spec: SourceSpec, cfg: LiveConfig, clock: RunClock, opts: OpenOptions) -> LiveSource:
    from edge.capture.opencv_camera import V4L2Source

    return V4L2Source(spec.target, cfg, clock)


def _gst(spec: SourceSpec, cfg: LiveConfig, clock: RunClock, opts: OpenOptions) -> LiveSource:
    from edge.capture.opencv_camera import GStreamerSource

    return GStreamerSource(spec.target, cfg, clock)


def _network(spec: SourceSpec, cfg: LiveConfig, clock: RunClock, opts: OpenOptions) -> LiveSource:
    from edge.capture.network import NetworkSource

    return NetworkSource(spec.target, spec.kind, cfg, clock)


def _picamera2(spec: SourceSpec, cfg: LiveConfig, clock: RunClock, opts: OpenOptions) -> LiveSource:
    from edge.capture.picamera2_source import Picamera2Source

    return Picamera2Source(int(spec.target), cfg, clock)


LIVE_SOURCES: dict[str, Opener] = {
    "file": _file,
    "v4l2": _v4l2,
    "gst": _gst,
    "rtsp": _network,
    "http": _network,
    "picamera2": _picamera2,
}


def open_source(
    spec: SourceSpec,
    cfg: LiveConfig,
    clock: RunClock,
    opts: OpenOptions,
    events: SourceEvents,
) -> LiveSource:
    """The source for `spec`. Cameras and streams come wrapped in `Reconnecting`: a lost one is
    reopened with backoff until the run stops; a file source ends the run at its end."""
    opener = LIVE_SOURCES[spec.kind]
    if spec.kind not in CAMERA_KINDS:
        return opener(spec, cfg, clock, opts)
    from edge.capture.reconnect import Reconnecting

    return Reconnecting(
        lambda: opener(spec, cfg, clock, opts), spec.kind, spec.label, cfg, clock, events
    )
