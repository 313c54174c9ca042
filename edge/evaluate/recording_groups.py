"""A recording of a labelled clip (`edge.evaluate.group_clip`) scored per group.

Each annotated face-frame of a recorded frame is tallied under its subject's labels: face-frames
protected, and faces (subjects) that leaked on any recorded frame. Face-frames of one face are
not independent draws, so the interval (95 % Wilson) is given on faces leaked as well as on
face-frames; the face-frame interval is the optimistic one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.evaluate.groups import MIN_RANK_N, wilson

ATTRIBUTES = ("race_group", "gender", "age_group")
FLOORS = (0, 15)  # px: every face, and faces whose shorter side is at least this


@dataclass
class _Cell:
    face_frames: int = 0
    protected: int = 0
    faces: set[str] = field(default_factory=set)
    leaked: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        lo, hi = wilson(self.protected, self.face_frames)
        return {
            "face_frames": self.face_frames,
            "protected": self.protected,
            "recall": self.protected / self.face_frames if self.face_frames else None,
            "interval": [lo, hi],
            "faces": len(self.faces),
            "faces_leaked": len(self.leaked),
        }


class GroupTally:
    """Face-frames per (size floor, attribute, group)."""

    def __init__(self, subjects: Mapping[str, Mapping[str, Any]]) -> None:
        self.subjects = subjects
        self.cells: dict[tuple[int, str, str], _Cell] = defaultdict(_Cell)

    def add(self, subject: str, box: tuple[float, float, float, float], protected: bool) -> None:
        labels = self.subjects[subject]
        for floor in FLOORS:
            if min(box[2], box[3]) < floor:
                continue
            for attribute in ATTRIBUTES:
                cell = self.cells[floor, attribute, str(labels.get(attribute, "(none)"))]
                cell.face_frames += 1
                cell.protected += protected
                cell.faces.add(subject)
                if not protected:
                    cell.leaked.add(subject)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (floor, attribute, group), cell in sorted(self.cells.items()):
            out.setdefault(f"{floor}px", {}).setdefault(attribute, {})[group] = cell.as_dict()
        return out


def worst_and_gap(cells: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The worst and best group (of those with at least MIN_RANK_N faces) and the gap between
    them in points of face-frame recall."""
    ranked = [
        (c["recall"], g)
        for g, c in cells.items()
        if c["faces"] >= MIN_RANK_N and c["recall"] is not None
    ]
    if len(ranked) < 2:
        return None
    (low, worst), (high, best) = min(ranked), max(ranked)
    return {"worst": worst, "best": best, "gap_points": round(100 * (high - low), 2)}


def render_groups(by_floor: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for floor, attributes in by_floor.items():
        cells = attributes.get("race_group", {})
        label = "every face" if floor == "0px" else f"faces of {floor} and more"
        lines.append(f"by perceived race ({label}):")
        for group, c in cells.items():
            lo, hi = c["interval"]
            lines.append(
                f"  {group}: {c['protected']} of {c['face_frames']} face-frames "
                f"({c['recall']:.2%} [{lo:.1%}-{hi:.1%}]); {c['faces_leaked']} of {c['faces']} "
                "faces leaked on some frame"
            )
        spread = worst_and_gap(cells)
        if spread:
            lines.append(
                f"  worst {spread['worst']}, best {spread['best']}: a gap of "
                f"{spread['gap_points']:.2f} points"
            )
    return lines
