"""Detections: boxes and scores, nothing else. No landmarks, no embeddings, no free-form fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Detections:
    """Column-oriented face detections in frame pixels: `xyxy` (N, 4) float32, `scores` (N,)."""

    xyxy: NDArray[np.float32]
    scores: NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        if self.scores.shape != (self.xyxy.shape[0],):
            raise ValueError(f"scores must have shape ({self.xyxy.shape[0]},)")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    @classmethod
    def concat(cls, parts: Sequence[Detections]) -> Detections:
        """Every box of every part, in order (no suppression)."""
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]).astype(np.float32, copy=False),
            np.concatenate([p.scores for p in parts]).astype(np.float32, copy=False),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, keep: NDArray[np.bool_] | NDArray[np.intp]) -> Detections:
        return Detections(self.xyxy[keep], self.scores[keep])

    def shifted(self, x0: float, y0: float) -> Detections:
        """The boxes moved by (x0, y0): from a crop's pixels to those of what it was cut from."""
        if not (x0 or y0):
            return self
        return Detections(self.xyxy + np.array([x0, y0, x0, y0], np.float32), self.scores)

    def clip(self, height: int, width: int) -> None:
        """Clip the boxes, in place, to a frame of this size."""
        clip_xyxy(self.xyxy, height, width)

    @property
    def widths(self) -> NDArray[np.float32]:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def heights(self) -> NDArray[np.float32]:
        return self.xyxy[:, 3] - self.xyxy[:, 1]


def clip_xyxy(xyxy: NDArray[np.floating[Any]], height: int, width: int) -> None:
    """Clip (N, 4) x0, y0, x1, y1 boxes, in place, to a `height` x `width` frame."""
    np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
    np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
