"""Tracks: what keeps a face covered between the detector's searches of its part of the picture.

The tracker only ever adds masks: every detection is redacted on the frame it was found, and a
track is never a reason to leave a detection out. What it adds:

* **follow**: between detections, each face is followed by optical flow on every frame
  (`edge.track.flow`), so its mask moves with it and stays its size. A box grows only while the
  flow cannot follow it: it is then moved at the track's last velocity and grown by `growth` of
  its size per frame;
* **births**: a face found for the first time is reported as a birth, which the look-back
  window follows back through the frames it still holds (`Window.backfill`), so that the frames
  before its discovery are covered along its path, with tight boxes.

A track ends when a search that covered its box found nothing there: at once for a track whose
every score stayed below `_CONFIDENT` or that was seen once (most such tracks are false alarms on
texture), after a second such search for the others (a face the detector misses once); or when
it was not detected for `hold_frames` frames; or when the flow has lost it for `_LOST_FOR`
frames. Boxes are in frame pixels, clipped to the frame; boxes wholly outside it
are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.config import TrackConfig
from edge.detect.detections import Detections, clip_xyxy
from edge.track.flow import Box, Grey, follow_all, grown, motion_copy, reach, shift_between

_HELD_SCORE = 0.0  # score given to the boxes the tracker adds (they are not detections)
_CONFIDENT = 0.2  # a track that never scored this much ends at the first search that misses it
_LOST_FOR = 4  # frames the flow may fail in a row before the track ends
_DRIFT = 0.01  # followed boxes grow this share per frame since the detection (flow drifts)
_VELOCITY_GAIN = 0.5  # weight of the newest motion in a track's velocity
# Least overlap for a detection to continue a track: boxes are where the face is now (followed),
# so a lower one would let a false alarm beside a face take its track away from it.
_MATCH = 0.3
_DUPLICATE = 0.4  # two fresh tracks overlapping this much hold one face

Covered = Callable[[Box], bool]  # whether this frame's searches would have found a face here


@dataclass(slots=True)
class Track:
    box: Box  # where the face is on the current frame (detected, or followed)
    velocity: Box = field(default_factory=lambda: np.zeros(4))  # per frame, of x0, y0, x1, y1
    hits: int = 1
    peak: float = 0.0  # highest detection score so far
    since: int = 0  # frames since the last detection
    misses: int = 0  # searches since the last detection that covered the box and missed it
    lost: int = 0  # frames in a row the flow could not follow it

    @property
    def confident(self) -> bool:
        return self.hits >= 2 and self.peak >= _CONFIDENT

    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass(frozen=True, slots=True)
class Coverage:
    """What to redact on the current frame, and the faces found on it for the first time (to be
    followed back through the frames before it)."""

    boxes: Detections
    births: list[Box] = field(default_factory=list)


class Tracker:
    def __init__(self, cfg: TrackConfig) -> None:
        self.cfg = cfg
        self._tracks: list[Track] = []
        self._grey: Grey | None = None
        self._small: NDArray[np.float32] | None = None  # `_grey`'s motion_copy
        self.moved: NDArray[np.float64] = np.zeros(2)  # (dx, dy) of the picture, last frame

    def __len__(self) -> int:
        return len(self._tracks)

    def update(self, found: Detections, grey: Grey, covered: Covered | None = None) -> Coverage:
        """Take the next frame (its grey picture, and the detections of this frame's searches,
        possibly none); return what to redact on it. `covered(box)`: whether this frame's
        searches covered a face at `box` (a miss there counts against its track).

        A track is first matched where its velocity puts it; those no detection matched are
        followed by optical flow and matched again; detections left over are births.
        Raises ValueError on boxes that are not finite; the caller then fails the frame closed.
        """
        if not np.isfinite(found.xyxy).all():
            raise ValueError("detections hold non-finite boxes")
        height, width = grey.shape[:2]
        before, self._grey = self._grey, grey
        # The picture's own motion since the last frame: where following a face starts here,
        # and following it back (`Window.backfill`) starts on the way back.
        same = before is not None and before.shape == grey.shape
        small_before, self._small = self._small, motion_copy(grey)
        if same and small_before is not None:
            self.moved = shift_between(small_before, self._small, grey.shape)
        else:
            self.moved = np.zeros(2)
        dets = found.xyxy.astype(np.float64)
        scores = found.scores.tolist()
        for track in self._tracks:
            track.since += 1
        predicted = [t.box + t.velocity for t in self._tracks]
        matched = self._associate(dets, predicted, set(), set())
        self._follow(
            [t for t in self._tracks if all(t is not m for m in matched.values())], before, grey
        )
        rest = [t.box for t in self._tracks]
        taken = {id(t) for t in matched.values()}
        matched.update(self._associate(dets, rest, set(matched), taken))
        # Where a track thought its face was is drawn too, beside the detection that continued
        # it: a detector's box can sit off a face (a turned head, a loose chin), the track's
        # path less so.
        expected = [t.box.copy() for t in matched.values()]
        for d, track in matched.items():
            self._hit(track, dets[d], scores[d])
        for track in self._tracks:
            if track.since > 0 and covered is not None and covered(track.box):
                track.misses += 1
        self._tracks = [t for t in self._tracks if self._keeps(t, width, height)]
        births: list[Box] = []
        for d in range(len(dets)):
            if d in matched:
                continue
            self._tracks.append(Track(box=dets[d].copy(), peak=scores[d]))
            births.append(dets[d].copy())
        self._merge()
        held = [self._mask(t) for t in self._tracks if t.since > 0] + expected
        return Coverage(_with_boxes(found, held, height, width), births)

    def _follow(self, tracks: list[Track], before: Grey | None, grey: Grey) -> None:
        moves: list[Box | None] = [None] * len(tracks)
        if tracks and before is not None and before.shape == grey.shape:
            moves = follow_all(
                before, grey, [t.box for t in tracks], [reach(t.box) for t in tracks], self.moved
            )
        for track, moved in zip(tracks, moves, strict=True):
            if moved is None:
                track.lost += 1
                track.box = track.box + track.velocity
            else:
                track.lost = 0
                track.velocity = (
                    _VELOCITY_GAIN * (moved - track.box) + (1 - _VELOCITY_GAIN) * track.velocity
                )
                track.box = moved

    def _associate(
        self,
        dets: NDArray[np.float64],
        where: list[Box],
        skip: set[int],
        taken: set[int],
    ) -> dict[int, Track]:
        """Greedy matching of detections (but `skip`) to tracks (but those in `taken`, by id)
        by the overlap of each detection with where each track is thought to be (`where`)."""
        if not self._tracks or len(dets) == 0:
            return {}
        overlap = _iou(dets, np.stack(where))
        matched: dict[int, Track] = {}
        used = set(taken)
        for flat in np.argsort(-overlap, axis=None):
            d, t = divmod(int(flat), len(self._tracks))
            if overlap[d, t] < max(self.cfg.iou, _MATCH):
                break
            track = self._tracks[t]
            if d in skip or d in matched or id(track) in used:
                continue
            matched[d] = track
            used.add(id(track))
        return matched

    def _hit(self, track: Track, box: Box, score: float) -> None:
        if track.hits > 1 or track.since > 1:
            # Motion since the last frame (the box there: detected or followed).
            step = (box - track.box) if track.lost == 0 else track.velocity
            track.velocity = _VELOCITY_GAIN * step + (1 - _VELOCITY_GAIN) * track.velocity
        track.box = box.copy()
        track.hits += 1
        track.peak = max(track.peak, score)
        track.since = track.misses = track.lost = 0

    def _keeps(self, track: Track, width: int, height: int) -> bool:
        allowed = 2 if track.confident else 1
        x0, y0, x1, y1 = track.box
        return (
            track.misses <= allowed
            and track.since <= self.cfg.hold_frames
            and track.lost < _LOST_FOR
            and x1 > 0
            and y1 > 0
            and x0 < width
            and y0 < height
        )

    def _merge(self) -> None:
        """Two tracks on one face (a second box of it that suppression left, both detected on
        this frame) become one: the one with the better score goes on."""
        fresh = [t for t in self._tracks if t.since == 0]
        if len(fresh) < 2:
            return
        overlap = _iou(np.stack([t.box for t in fresh]), np.stack([t.box for t in fresh]))
        gone: set[int] = set()
        order = sorted(range(len(fresh)), key=lambda i: -fresh[i].peak)
        for a, i in enumerate(order):
            if id(fresh[i]) in gone:
                continue
            for j in order[a + 1 :]:
                if overlap[i, j] >= _DUPLICATE:
                    gone.add(id(fresh[j]))
        self._tracks = [t for t in self._tracks if id(t) not in gone]

    def _mask(self, track: Track) -> Box:
        grow = 1.0 + _DRIFT * min(track.since, 30) + self.cfg.growth * track.lost
        return grown(track.box, grow)


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


def _with_boxes(found: Detections | None, extra: list[Box], height: int, width: int) -> Detections:
    """`found` (unchanged) plus `extra` boxes clipped to the frame (those left with no area
    dropped)."""
    added = boxes_on_frame(extra, height, width)
    if found is None or len(found) == 0:
        return added
    if len(added) == 0:
        return found
    return Detections.concat([found, added])


def boxes_on_frame(extra: list[Box], height: int, width: int) -> Detections:
    """Boxes the tracker adds, as detections with score 0, clipped to a height x width frame."""
    if not extra:
        return Detections.empty()
    xyxy = np.stack(extra).astype(np.float64)
    clip_xyxy(xyxy, height, width)
    inside = (xyxy[:, 2] - xyxy[:, 0] >= 1) & (xyxy[:, 3] - xyxy[:, 1] >= 1)
    return Detections(
        xyxy[inside].astype(np.float32), np.full(int(inside.sum()), _HELD_SCORE, np.float32)
    )
