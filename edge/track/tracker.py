"""A constant-velocity IoU tracker whose only output is *more* boxes to redact.

Every detection is redacted on the frame it was found; the tracker never gates, confirms or
removes one. What it adds:

* **hold**: after a face's last detection, its predicted box (moved by the track's velocity,
  grown by `growth` of its size per frame since) is redacted too, for up to `hold_frames`
  frames. How long scales with the evidence: a track seen once is held for
  `_HOLD_PER_HIT` frames, each further detection adds as many, up to `hold_frames`; a track
  whose best score stayed below `_CONFIDENT` is held `_WEAK_HOLD` frames at most. A face seen
  for a while is held the full time; a flickering false alarm does not leave a trail;
* **backfill** (used only when frames are held back, see `Lookahead`): a face's path, run
  backwards from its first detection, is offered to the frames before it, as many as its hold
  (so a one-frame false alarm gets 3, a face seen for a while `hold_frames`), as far as the
  window reaches; a face found again after a gap gets boxes interpolated across the gap.

Boxes are in frame pixels, clipped to the frame; boxes wholly outside it are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.config import TrackConfig
from edge.detect.detections import Detections, clip_xyxy

Box = NDArray[np.float64]  # (cx, cy, w, h)

# Weight of the newest measurement in the velocity estimate; the rest is the previous estimate.
_VELOCITY_GAIN = 0.6
# Score given to boxes the tracker adds (they are not detections).
_HELD_SCORE = 0.0
# Frames of hold earned by each detection of a track (capped by `hold_frames`).
_HOLD_PER_HIT = 3
# A track none of whose detections scored this much is held (and backfilled) at most
# `_WEAK_HOLD` frames: most such tracks are flickering false alarms on texture, and their trails
# tripled the masked area away from faces on the development clips.
_CONFIDENT = 0.2
_WEAK_HOLD = 3


@dataclass(frozen=True, slots=True)
class Coverage:
    """What to redact on the current frame, and what to add to frames already seen.

    `backfill` maps "frames ago" (1 = the previous frame) to extra boxes for that frame.
    """

    boxes: Detections
    backfill: dict[int, Detections] = field(default_factory=dict)


@dataclass(slots=True)
class _Track:
    box: Box  # at the last detection
    velocity: Box  # per frame
    first: Box  # at the first detection
    age: int = 0  # frames since the first detection
    hits: int = 1
    missed: int = 0  # frames since the last detection
    covered_before: int = 0  # frames before the first detection already given boxes
    peak: float = 0.0  # highest detection score so far

    def predicted(self, growth: float) -> Box:
        ahead = self.missed
        cx, cy, w, h = self.box + self.velocity * ahead
        grow = 1.0 + growth * ahead
        size = self.box[2:] * grow
        return np.array([cx, cy, max(w, size[0]), max(h, size[1])])


def _to_cxcywh(xyxy: NDArray[np.float32]) -> NDArray[np.float64]:
    xy = xyxy.astype(np.float64)
    return np.stack(
        [
            (xy[:, 0] + xy[:, 2]) / 2,
            (xy[:, 1] + xy[:, 3]) / 2,
            xy[:, 2] - xy[:, 0],
            xy[:, 3] - xy[:, 1],
        ],
        axis=1,
    )


def _to_xyxy(boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    cx, cy, w, h = boxes.T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _iou(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


class Tracker:
    def __init__(self, cfg: TrackConfig, *, backfill: int = 0) -> None:
        """`backfill`: how many past frames can still take boxes (0 for a live source)."""
        self.cfg = cfg
        self.backfill = backfill
        self._tracks: list[_Track] = []
        self._shape: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self._tracks)

    def update(self, found: Detections, height: int, width: int) -> Coverage:
        """Take this frame's detections (possibly none); return what to redact.

        Raises ValueError on boxes that are not finite; the caller then fails the frame closed.
        """
        if not np.isfinite(found.xyxy).all():
            raise ValueError("detections hold non-finite boxes")
        self._shape = (height, width)
        for track in self._tracks:
            track.missed += 1
            track.age += 1
        dets = _to_cxcywh(found.xyxy)
        matched = self._associate(dets)
        backfill: dict[int, list[Box]] = {}
        for det_index, (det, score) in enumerate(zip(dets, found.scores.tolist(), strict=True)):
            known = matched.get(det_index)
            if known is None:
                born = _Track(box=det, velocity=np.zeros(4), first=det, peak=score)
                self._tracks.append(born)
                self._backfill_before(born, backfill)
            else:
                known.peak = max(known.peak, score)
                self._continue(known, det, backfill)
        self._tracks = [t for t in self._tracks if t.missed <= self._hold(t)]
        held = [t.predicted(self.cfg.growth) for t in self._tracks if t.missed > 0]
        boxes = self._detections(found, held)
        return Coverage(
            boxes,
            {ago: self._detections(None, extra) for ago, extra in backfill.items() if extra},
        )

    def _hold(self, track: _Track) -> int:
        cap = self.cfg.hold_frames if track.peak >= _CONFIDENT else _WEAK_HOLD
        return min(cap, self.cfg.hold_frames, _HOLD_PER_HIT * track.hits)

    def _associate(self, dets: NDArray[np.float64]) -> dict[int, _Track]:
        """Greedy matching by IoU against each track's predicted (grown) box."""
        if not self._tracks or len(dets) == 0:
            return {}
        predicted = np.stack([t.predicted(self.cfg.growth) for t in self._tracks])
        overlap = _iou(_to_xyxy(dets), _to_xyxy(predicted))
        matched: dict[int, _Track] = {}
        used: set[int] = set()
        for flat in np.argsort(-overlap, axis=None):
            d, t = divmod(int(flat), len(self._tracks))
            if overlap[d, t] < self.cfg.iou:
                break
            if d in matched or t in used:
                continue
            matched[d] = self._tracks[t]
            used.add(t)
        return matched

    def _continue(self, track: _Track, det: Box, backfill: dict[int, list[Box]]) -> None:
        gap = track.missed  # frames since the previous detection (1 = consecutive)
        step = (det - track.box) / gap
        if track.hits == 1:
            track.velocity = step
        else:
            track.velocity = _VELOCITY_GAIN * step + (1 - _VELOCITY_GAIN) * track.velocity
        # Frames between the two detections get boxes on the straight line joining them, as large
        # as the larger of the two, so a face lost for a few frames is bridged from both sides.
        for ago in range(1, min(gap, self.backfill + 1)):
            t = 1.0 - ago / gap
            box = track.box + (det - track.box) * t
            box[2:] = np.maximum(track.box[2:], det[2:]) * (1.0 + self.cfg.growth)
            backfill.setdefault(ago, []).append(box)
        track.box = det
        track.hits += 1
        track.missed = 0
        if track.hits == 2:
            track.covered_before = 0  # redo the frames before, now that the motion is known
        self._backfill_before(track, backfill)

    def _backfill_before(self, track: _Track, backfill: dict[int, list[Box]]) -> None:
        """Offer the track's path, run backwards from its first detection, to the frames before
        it: as many as its hold (so with the same evidence), as far as the window reaches."""
        want = self._hold(track)
        for before in range(track.covered_before + 1, want + 1):
            ago = track.age + before
            if ago > self.backfill:
                break
            box = track.first - track.velocity * before
            box[2:] = track.first[2:] * (1.0 + self.cfg.growth * before)
            backfill.setdefault(ago, []).append(box)
        track.covered_before = max(track.covered_before, want)

    def _detections(self, found: Detections | None, extra: list[Box]) -> Detections:
        """`found` (unchanged) plus `extra` boxes clipped to the frame."""
        height, width = self._shape
        if extra:
            xyxy = _to_xyxy(np.stack(extra))
            clip_xyxy(xyxy, height, width)
            inside = (xyxy[:, 2] - xyxy[:, 0] >= 1) & (xyxy[:, 3] - xyxy[:, 1] >= 1)
            added = Detections(
                xyxy[inside].astype(np.float32), np.full(int(inside.sum()), _HELD_SCORE, np.float32)
            )
        else:
            added = Detections.empty()
        if found is None or len(found) == 0:
            return added
        if len(added) == 0:
            return found
        return Detections.concat([found, added])
