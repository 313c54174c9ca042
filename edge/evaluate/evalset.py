"""Reader for the `faceblur-eval/1` annotation format (images and videos with face boxes)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

Box = tuple[float, float, float, float]  # x, y, w, h


class _Open(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ImageItem(_Open):
    file: str
    width: int
    height: int
    source: str = ""
    exhaustive: bool = True
    faces: list[Box]
    ignore: list[Box] = []
    face_attrs: list[dict[str, int | str | None]] | None = None
    subset: str = ""
    # Demographic labels of the one labelled face (groups sets only); see groups/dev/README.md.
    labels: dict[str, str | int | float | bool | None] | None = None


class FrameItem(_Open):
    index: int
    faces: list[Box]
    ignore: list[Box] = []


class VideoItem(_Open):
    file: str
    width: int
    height: int
    fps: float
    num_frames: int
    source: str = ""
    exhaustive: bool = True
    frames: list[FrameItem]


class EvalSet(_Open):
    format: str = "faceblur-eval/1"  # the groups sets omit it; their records are compatible
    images: list[ImageItem] = []
    videos: list[VideoItem] = []


def load_evalset(root: Path) -> EvalSet:
    data = json.loads((root / "annotations.json").read_text(encoding="utf-8"))
    evalset = EvalSet.model_validate(data)
    if evalset.format != "faceblur-eval/1":
        raise ValueError(f"{root}: unsupported format {evalset.format!r}")
    return evalset
