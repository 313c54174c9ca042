"""Reader for the `faceblur-eval/1` annotation format (images and videos with face boxes)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from edge.config import first_problem
from edge.errors import MediaError, UsageError

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
    # A labelled clip's (`edge.evaluate.group_clip`): each face's subject id, parallel to faces.
    subjects: list[str] | None = None


class VideoItem(_Open):
    file: str
    width: int
    height: int
    fps: float
    num_frames: int
    source: str = ""
    exhaustive: bool = True
    frames: list[FrameItem]
    # A labelled clip's: each subject's labels, as the groups set that the faces came from has them.
    subjects: dict[str, dict[str, str | int | float | bool | None]] | None = None


class EvalSet(_Open):
    format: str = "faceblur-eval/1"  # the groups sets omit it; their records are compatible
    images: list[ImageItem] = []
    videos: list[VideoItem] = []


def load_evalset(root: Path) -> EvalSet:
    """Read `root/annotations.json`. A folder that is not a readable set is a `UsageError`."""
    if not root.is_dir():
        raise UsageError(f"evaluation set {root}: not a folder")
    path = root / "annotations.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"evaluation set {root}: no annotations.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}") from None
    try:
        evalset = EvalSet.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{path}: {first_problem(exc)}") from None
    if evalset.format != "faceblur-eval/1":
        raise UsageError(f"{path}: unsupported format {evalset.format!r}")
    return evalset


def check_media(root: Path, files: Iterable[str]) -> None:
    """Fail before any work when a listed media file is missing."""
    for file in files:
        if not (root / file).is_file():
            raise MediaError(f"{root / file}: listed in annotations.json, not found")
