"""Counting: per-face results in, recall by size, by WIDER attribute and per video out.

Pure bookkeeping, no pixels: `runner` decides whether each face was protected, this module adds
it up into the JSON-able summary that the table, the JSON report and the chart all read.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.evaluate import overredaction
from edge.evaluate.evalset import Box
from edge.evaluate.overredaction import CellCount
from edge.evaluate.protection import KEEP_LIMIT

# Shorter side of the annotated box, in px: [low, high). Faces under 10 px are `ignore` boxes in
# the sets this reads; any that are not land in a bin of their own.
SIZE_BINS: tuple[tuple[int, int | None], ...] = ((10, 20), (20, 40), (40, 80), (80, None))
MIN_FACE_PX = 20  # the headline recall counts faces this size and up
ATTRIBUTES = ("blur", "occlusion", "pose", "illumination")  # WIDER's labels, on WIDER images


@dataclass(frozen=True)
class FaceResult:
    file: str
    box: Box
    protected: bool
    kept: float  # the largest share of detail kept in one ellipse quadrant
    frame: int | None = None  # video frame index; None for images
    attrs: Mapping[str, int | str | None] = field(default_factory=dict)

    @property
    def size(self) -> float:
        return min(self.box[2], self.box[3])


@dataclass(frozen=True)
class ImageResult:
    file: str
    faces: list[FaceResult]
    cells: CellCount | None  # over-redaction cells; None when the annotation is not exhaustive
    obscured: bool


@dataclass(frozen=True)
class VideoResult:
    file: str
    frames: int  # decoded
    faces: list[FaceResult]  # one per annotated face per frame
    obscured: int
    cells: CellCount | None = None  # over annotated frames; None when not exhaustive

    def leaks(self) -> list[bool]:
        """Per decoded frame: did any annotated face leak on it?"""
        flags = [False] * self.frames
        for face in self.faces:
            if not face.protected and face.frame is not None:
                flags[face.frame] = True
        return flags


def longest_run(flags: Iterable[bool]) -> int:
    """The longest stretch of consecutive True values."""
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def size_label(size: float) -> str:
    for low, high in SIZE_BINS:
        if size >= low and (high is None or size < high):
            return f"{low}+" if high is None else f"{low}-{high}"
    return f"<{SIZE_BINS[0][0]}"


def recall(faces: Iterable[FaceResult], min_px: float = 0.0) -> dict[str, Any]:
    scored = [f for f in faces if f.size >= min_px]
    protected = sum(f.protected for f in scored)
    return _ratio(protected, len(scored))


def _ratio(protected: int, total: int) -> dict[str, Any]:
    return {
        "protected": protected,
        "total": total,
        "recall": protected / total if total else None,
    }


def by_size(faces: Sequence[FaceResult]) -> list[dict[str, Any]]:
    """One row per size bin, in size order; `median_px` places the bin on the chart."""
    labels = [f"<{SIZE_BINS[0][0]}"] + [size_label(low) for low, _ in SIZE_BINS]
    rows = []
    for label in labels:
        members = [f for f in faces if size_label(f.size) == label]
        if not members and label.startswith("<"):
            continue
        row = {"bin": label, **recall(members)}
        row["median_px"] = statistics.median(f.size for f in members) if members else None
        rows.append(row)
    return rows


def by_attribute(faces: Sequence[FaceResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """Recall per value of each WIDER attribute, over the faces that carry it."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in ATTRIBUTES:
        values = sorted({str(f.attrs[name]) for f in faces if name in f.attrs})
        if values:
            out[name] = {
                v: recall(f for f in faces if name in f.attrs and str(f.attrs[name]) == v)
                for v in values
            }
    return out


def misses(faces: Iterable[FaceResult]) -> list[dict[str, Any]]:
    return [
        {
            "file": f.file,
            **({} if f.frame is None else {"frame": f.frame}),
            "box": list(f.box),
            "size_px": round(f.size, 1),
            "kept": round(f.kept, 3),
        }
        for f in faces
        if not f.protected
    ]


def image_summary(results: Sequence[ImageResult]) -> dict[str, Any]:
    faces = [f for r in results for f in r.faces]
    return {
        "count": len(results),
        "faces": recall(faces),
        f"faces_{MIN_FACE_PX}px_up": recall(faces, MIN_FACE_PX),
        "by_size": by_size(faces),
        "by_attribute": by_attribute(faces),
        "obscured": sum(r.obscured for r in results),
        "misses": misses(faces),
    }


def video_summary(results: Sequence[VideoResult]) -> dict[str, Any]:
    faces = [f for r in results for f in r.faces]
    per_video: list[dict[str, Any]] = []
    for r in results:
        leaks = r.leaks()
        per_video.append(
            {
                "file": r.file,
                "frames": r.frames,
                "face_frames": recall(r.faces),
                f"face_frames_{MIN_FACE_PX}px_up": recall(r.faces, MIN_FACE_PX),
                "frames_with_leak": sum(leaks),
                "longest_leak_run": longest_run(leaks),
                "obscured": r.obscured,
            }
        )
    return {
        "count": len(results),
        "frames": sum(r.frames for r in results),
        "face_frames": recall(faces),
        f"face_frames_{MIN_FACE_PX}px_up": recall(faces, MIN_FACE_PX),
        "by_size": by_size(faces),
        "frames_with_leak": sum(v["frames_with_leak"] for v in per_video),
        "longest_leak_run": max((v["longest_leak_run"] for v in per_video), default=0),
        "obscured": sum(r.obscured for r in results),
        "per_video": per_video,
        "misses": misses(faces),
    }


def _cells(scored: Sequence[tuple[str, CellCount]]) -> dict[str, Any]:
    total = sum((cells for _, cells in scored), CellCount())
    return {
        "textured_cells": total.textured,
        "destroyed_cells": total.destroyed,
        "share": total.share,
    }


def over_redaction_summary(
    images: Sequence[ImageResult], videos: Sequence[VideoResult] = ()
) -> dict[str, Any]:
    """Images, and apart from them the annotated frames of exhaustively annotated videos."""
    scored = [(r.file, r.cells) for r in images if r.cells is not None]
    clips = [(r.file, r.cells) for r in videos if r.cells is not None]
    return {
        "cell_px": overredaction.CELL_PX,
        "margin": overredaction.MARGIN,
        "detail_sigma_px": overredaction.DETAIL_SIGMA,
        "texture_rms": overredaction.TEXTURE_RMS,
        "keep_limit": KEEP_LIMIT,
        "images": len(scored),
        **_cells(scored),
        "per_image": [{"file": f, **_cells([(f, c)])} for f, c in scored],
        "videos": {
            "count": len(clips),
            **_cells(clips),
            "per_video": [{"file": f, **_cells([(f, c)])} for f, c in clips],
        },
    }
