"""`veil run`'s sections of the configuration: the camera and its deadlines ([live]) and the
recording ([record]). Closed and validated like the rest (`edge.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Closed as _Closed
from edge.config.base import Text
from edge.config.errors import KeyedProblem

# TOML's integers are 64-bit; Python's parser reads larger ones without complaint.
_TOML_INT_MAX = 2**63 - 1


class LiveConfig(_Closed):
    """`veil run`: the camera, and how long a frame may wait for the detector to vouch for it."""

    source: Text = Field(
        "picamera2",
        min_length=1,
        max_length=2000,
        description="source spec: picamera2[:N], v4l2:/dev/videoN, rtsp://..., http(s)://..., "
        "gst:PIPELINE or file:PATH; `veil run --source` overrides it",
    )
    width: int = Field(1280, ge=16, le=7680, description="requested capture width (cameras)")
    height: int = Field(720, ge=16, le=4320, description="requested capture height (cameras)")
    fps: float = Field(
        30.0,
        ge=1.0,
        le=240.0,
        description="requested frame rate (cameras); also the recording's nominal rate (its "
        "keyframe interval and time steps), kept to steps of 1/1001, so that a rate far below "
        "1 would round to none: a camera loop, not a time-lapse",
    )
    lores_width: int = Field(
        640, ge=64, le=1920, description="picamera2: width of the stream the detector sees"
    )
    max_latency_ms: float = Field(
        1000.0,
        ge=20.0,
        le=5000.0,
        description="a frame the detector has not vouched for this long after capture is late: "
        "it never leaves clear, it is dropped or fully obscured (`late`) and counted. It must "
        "hold the frames a frame waits for its searches ([schedule]): `veil check-config` "
        "says when it cannot; the preview and the stream out show frames this much later",
    )
    late: Literal["drop", "obscure"] = Field(
        "drop",
        description="what happens to a late frame: dropped (the recording shows a gap) or kept "
        "fully obscured (the recording keeps every frame time, exit code 3)",
    )
    min_fps: float = Field(
        0.0,
        ge=0.0,
        le=240.0,
        description="the lowest frame rate `veil run` may take to keep every frame it takes "
        "searched in full (0 = fps: never lower). A camera is asked for the rate it picks; a "
        "file or network source is decimated evenly, the frames not taken counted apart from "
        "the frames lost. Below it, the run is degraded (`cannot keep up`) and exits 4",
    )
    queue: int = Field(
        2,
        ge=1,
        le=16,
        description="frames waiting for the detector; when it is full the oldest frame waiting "
        "is dropped and counted, so latency cannot grow",
    )
    reconnect_min_s: float = Field(
        0.5, ge=0.05, le=60.0, description="first wait before reopening a lost camera or stream"
    )
    reconnect_max_s: float = Field(
        10.0, ge=0.1, le=600.0, description="longest wait between reopening attempts (backoff)"
    )
    timeout_s: float = Field(
        5.0,
        ge=0.5,
        le=120.0,
        description="open and read timeout of network sources; read timeout of V4L2 and "
        "GStreamer cameras (a stalled camera is a lost one)",
    )

    @property
    def least_fps(self) -> float:
        """The lowest rate a run may take: `min_fps`, or `fps` when unset."""
        return self.min_fps or self.fps

    @model_validator(mode="after")
    def _ordered(self) -> LiveConfig:
        if self.min_fps > self.fps:
            raise KeyedProblem(
                ("min_fps",), f"must not exceed fps ({self.fps:g}): it is the lowest rate taken"
            )
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self


class RecordConfig(_Closed):
    """`veil run`: redacted H.264 in fragmented MP4 segments, and how long they are kept."""

    segment_seconds: float = Field(
        60.0, ge=2.0, le=3600.0, description="length of one MP4 segment, named by its UTC start"
    )
    fragment_seconds: float = Field(
        1.0,
        ge=0.2,
        le=10.0,
        description="keyframe and MP4 fragment interval: a power cut loses the fragment being "
        "written and at most one whole one before it (fsync runs beside the recording)",
    )
    crf: int = Field(23, ge=0, le=40, description="x264 quality; lower is better and larger")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        "superfast", description="x264 speed preset; it shares the frame budget with detection"
    )
    max_age_hours: float = Field(
        0.0, ge=0.0, le=24.0 * 366, description="delete segments older than this; 0 = no limit"
    )
    max_bytes: int = Field(
        0,
        ge=0,
        le=_TOML_INT_MAX,
        description="keep the segments under this many bytes, oldest deleted first; 0 = no limit",
    )
    min_free_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        le=_TOML_INT_MAX,
        description="delete oldest segments while the disk has less free space than this",
    )
