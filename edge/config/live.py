"""`veil run`'s sections of the configuration: the camera and its deadlines ([live]) and the
recording ([record]). Closed and validated like the rest (`edge.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Closed as _Closed
from edge.config.base import Text

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
        "exceed the detector's time per frame on the device, or no frame can be vouched for; "
        "the live profiles set less",
    )
    late: Literal["drop", "obscure"] = Field(
        "drop",
        description="what happens to a late frame: dropped (the recording shows a gap) or kept "
        "fully obscured (the recording keeps every frame time, exit code 3)",
    )
    detect_every: int = Field(
        1,
        ge=1,
        le=8,
        description="run the detector on every Nth frame; a frame in between leaves only once "
        "frames on both sides of it were searched (needs lookahead >= detect_every - 1)",
    )
    sweep: int = Field(
        1,
        ge=1,
        le=16,
        description="CenterFace's fine pass (`detector.centerface.fine_scale`): spread its "
        "regions over this many frames, so each part of the picture is searched finely once "
        "every `sweep` frames at 1/sweep of the cost per frame. A face that appears is then "
        "found within `sweep` frames; with lookahead >= sweep - 2 it shows on one frame at most",
    )
    whole_every: int = Field(
        1,
        ge=1,
        le=4,
        description="with a fine pass: run CenterFace's whole-frame pass (the large faces) on "
        "every Nth frame only; a large face that appears is then found within N frames (so "
        "lookahead >= N - 2 too)",
    )
    lookahead: int = Field(
        2,
        ge=0,
        le=30,
        description="frames held back so that a face found now is also drawn on the frames just "
        "before it; every frame held counts against max_latency_ms",
    )
    queue: int = Field(
        2,
        ge=1,
        le=16,
        description="frames waiting for the detector; when it is full the camera's newest frame "
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
    def cycle(self) -> int:
        """Searches in which a spread-out detector covers the whole picture, finely and whole:
        any `sweep` consecutive ones search every fine region, any `whole_every` the whole frame."""
        return max(self.sweep, self.whole_every)

    @model_validator(mode="after")
    def _vouchable(self) -> LiveConfig:
        if self.lookahead < self.detect_every - 1:
            raise ValueError(
                f"lookahead ({self.lookahead}) must be at least detect_every - 1 "
                f"({self.detect_every - 1}), or frames between searches could not be vouched for"
            )
        if self.lookahead < self.cycle - 2:
            raise ValueError(
                f"lookahead ({self.lookahead}) must be at least max(sweep, whole_every) - 2 "
                f"({self.cycle - 2}), or a face that appears could stay clear on several frames"
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
