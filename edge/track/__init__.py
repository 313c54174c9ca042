"""Tracking stage: temporal coverage that can only add masks to the current detections.

`Tracker` runs on every source (live or recorded) and sees only the past: it holds each face's
predicted box for a while after its last detection. `Lookahead` is for recorded media: it delays
frames by K so that boxes found later can also be drawn on the frames before them.
"""

from edge.track.lookahead import Lookahead
from edge.track.tracker import Coverage, Tracker

__all__ = ["Coverage", "Lookahead", "Tracker"]
