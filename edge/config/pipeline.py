"""The sections every run reads, recorded or live: [detector], [track], [redact], [video] and
[audit].

Every bound below exists so that no value can switch redaction off in effect: there is no `none`
method, a mask cannot shrink below the detected box, and the detector threshold cannot be raised
to a point where it stops reporting faces.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Closed as _Closed

Backend = Literal["centerface", "blazeface"]
Channel = Annotated[int, Field(ge=0, le=255)]
# The tuple settings below say `strict=False`: a TOML array arrives as a list, which may then
# stand for the tuple. Only the container is lenient; its items stay strict.
# onnxruntime execution providers CenterFace may ask for, best first; CPU is the fallback.
Provider = Literal["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


class CenterFaceConfig(_Closed):
    threshold: float = Field(
        0.1, ge=0.05, le=0.6, description="lowest score kept; low on purpose (recall first)"
    )
    max_side: int = Field(
        640,
        ge=160,
        le=4096,
        description="video frames are scaled so their longer side is at most this for detection",
    )
    max_downscale: float = Field(
        2.0,
        ge=1.0,
        le=4.0,
        description="never shrink a frame more than this for detection, whatever max_side says, "
        "so a 20 px face is still 10 px to the detector (large frames then cost more time)",
    )
    fine_scale: float = Field(
        1.0,
        ge=0.0,
        le=3.0,
        description="video frames are also searched at this scale (0 = not), in a grid of "
        "overlapping regions (`fine_grid`), for faces too small for the whole-frame pass; "
        "it only runs where it is larger than that pass's scale. Its cost grows with the "
        "square of the scale: 0.75 of a 720p frame is 960x540 model pixels",
    )
    fine_grid: tuple[int, int] = Field(
        (1, 4),
        strict=False,
        description="rows and columns of the fine pass's regions; a run spreads them over "
        "several frames (`schedule.sweep`)",
    )
    fine_margin: int = Field(
        32,
        ge=8,
        le=256,
        description="frame pixels each fine region reaches into its neighbours: a face up to "
        "twice this lies whole inside one region (larger ones are the whole-frame pass's)",
    )

    providers: tuple[Provider, ...] = Field(
        ("CPUExecutionProvider",),
        strict=False,
        min_length=1,
        description="onnxruntime execution providers to ask for, best first, ending with "
        "CPUExecutionProvider (the fallback). One this onnxruntime lacks is skipped with a "
        "warning, and the audit log records the one that runs",
    )

    @field_validator("providers")
    @classmethod
    def _cpu_last(cls, value: tuple[Provider, ...]) -> tuple[Provider, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each provider may appear once")
        if value[-1] != "CPUExecutionProvider":
            raise ValueError("the last provider must be CPUExecutionProvider, the fallback")
        return value

    @field_validator("fine_grid")
    @classmethod
    def _grid(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not all(1 <= n <= 8 for n in value):
            raise ValueError("rows and columns must each be 1 to 8")
        return value

    still_max_side: int = Field(
        2048,
        ge=320,
        le=8192,
        description="the same for still images, where time matters less than small faces",
    )
    still_upscale: float = Field(
        2.0,
        ge=1.0,
        le=3.0,
        description="still images are also searched at this scale, in overlapping tiles, for "
        "faces too small for the whole-image pass (a photo larger than still_max_side is then "
        "searched at full resolution too)",
    )
    still_faint_from: float = Field(
        0.04,
        ge=0.0,
        le=0.6,
        description="still images: a candidate scoring from this up to threshold is looked at "
        "again close up, as it is, brightened and with local contrast, and kept if found there "
        "at threshold (`edge.detect.second_look`); 0 = no second look",
    )
    still_faint_most: int = Field(
        16, ge=1, le=64, description="still images: the most candidates looked at again"
    )

    @model_validator(mode="after")
    def _faint_under_threshold(self) -> CenterFaceConfig:
        if self.still_faint_from >= self.threshold:
            raise ValueError("still_faint_from must be under threshold (or 0)")
        return self


class BlazeFaceConfig(_Closed):
    model: Literal["short", "full"] = Field(
        "full", description="short range (faces within about 2 m) or full range (up to 5 m)"
    )
    threshold: float = Field(
        0.3, ge=0.05, le=0.6, description="lowest score kept; low on purpose (recall first)"
    )
    tiles: int = Field(
        2,
        ge=0,
        le=8,
        description="video frames: besides the whole frame (always searched), a grid of square "
        "overlapping tiles this many columns wide, for faces too small for the whole-frame "
        "pass; 0 = whole frame only. 720p: 2 adds 2 tiles, 3 adds 6, 4 adds 12; each tile "
        "costs one more inference",
    )
    still_tiles: int = Field(
        4, ge=0, le=12, description="the same for still images, where time matters less"
    )
    tile_overlap: float = Field(
        0.25,
        ge=0.1,
        le=0.5,
        description="share of a tile's side that neighbouring tiles share; a face smaller than "
        "that lies whole inside some tile",
    )


class LowLightConfig(_Closed):
    """Dark pictures: what the detector sees is brightened (`edge.detect.exposure`); the
    redaction still acts on the original pixels."""

    mode: Literal["both", "alternate", "lift"] = Field(
        "both",
        description="a dark pass input is searched as it is and brightened (both: one more "
        "model pass on dark inputs only); video frames search it as it is on one sweep cycle "
        "and brightened on the next (alternate: no extra pass, the tracker holds faces between; "
        "still images search both); or brightened only (lift: no extra pass)",
    )
    dark_below: float = Field(
        80.0,
        ge=40.0,
        le=160.0,
        description="a pass input (the whole frame or one region, at the model's size) whose "
        "mean luma (0-255) is below this is dark; in one that is not, each area of at least "
        "3x3 cells of 32 model pixels this dark is brightened on its own",
    )
    target: float = Field(
        110.0, ge=80.0, le=160.0, description="the mean luma a dark input is brightened to"
    )

    @model_validator(mode="after")
    def _order(self) -> LowLightConfig:
        if self.target <= self.dark_below:
            raise ValueError("target must be above dark_below")
        return self


class DetectorConfig(_Closed):
    backend: Literal["centerface", "blazeface", "ensemble"] = Field(
        "centerface", description="one detector, or `ensemble`: the union of several"
    )
    ensemble: tuple[Backend, ...] = Field(
        ("centerface", "blazeface"),
        strict=False,
        min_length=2,
        description="the detectors whose boxes are all redacted when backend = ensemble",
    )
    nms_iou: float = Field(
        0.4, ge=0.2, le=0.9, description="overlap above which duplicate boxes are merged"
    )
    threads: int = Field(0, ge=0, le=64, description="inference threads; 0 = one per core")
    centerface: CenterFaceConfig = CenterFaceConfig()
    blazeface: BlazeFaceConfig = BlazeFaceConfig()
    low_light: LowLightConfig = LowLightConfig()

    @field_validator("ensemble")
    @classmethod
    def _distinct(cls, value: tuple[Backend, ...]) -> tuple[Backend, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each detector may appear once")
        return value

    def backends(self) -> tuple[Backend, ...]:
        return self.ensemble if self.backend == "ensemble" else (self.backend,)


class TrackConfig(_Closed):
    """Temporal coverage. It can only add masks: tracks are redacted together with the current
    detections, never instead of them."""

    hold_frames: int = Field(
        12,
        ge=1,
        le=300,
        description="follow a face (optical flow) and redact it up to this many frames after it "
        "was last detected; a track ends sooner when a search that covered it misses it (a "
        "weak or once-seen track at the second such miss, a confident one at the third)",
    )
    growth: float = Field(
        0.04,
        ge=0.0,
        le=0.5,
        description="while the flow cannot follow a face, its box grows by this share of its "
        "size per frame (on top of 1 % a frame since its last detection, for the flow's drift)",
    )
    iou: float = Field(
        0.1, ge=0.01, le=0.9, description="least overlap for a detection to continue a track"
    )
    lookahead: int = Field(
        15,
        ge=0,
        le=120,
        description="frames held back, at least what the schedule waits, so that a face first "
        "found is followed back onto the frames before it (live: at most this many, for 0.6 of "
        "live.max_latency_ms; memory: this many frames)",
    )


class RedactConfig(_Closed):
    method: Literal["fill", "noise", "blur", "pixelate"] = Field(
        "fill",
        description="fill and noise hold nothing of the face; blur and pixelate are weaker",
    )
    mask_scale: float = Field(
        1.6, ge=1.0, le=3.0, description="ellipse size relative to the detected face box"
    )
    color: tuple[Channel, Channel, Channel] = Field(
        (64, 64, 64),
        strict=False,
        description="BGR colour of `fill` and of fully obscured frames, each 0 to 255",
    )


class VideoConfig(_Closed):
    crf: int = Field(20, ge=0, le=40, description="x264 quality; lower is better and larger")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = (
        Field("veryfast", description="x264 speed preset")
    )


class AuditConfig(_Closed):
    c2pa: bool = Field(
        False,
        description="also sign a C2PA manifest into each output (generator Veil, action "
        "'faces redacted', no regions) with the device key; needs the `c2pa` extra",
    )
    summary_seconds: float = Field(
        60.0,
        ge=1.0,
        le=3600.0,
        description="write a summary record (counts, detector latency, fail-closed causes) at "
        "least this often; also at once, at most once a second, when a frame is failed closed",
    )
