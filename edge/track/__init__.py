"""Tracking stage: temporal coverage that can only add masks to the current detections.

`Tracker` follows every face found onto each next frame by optical flow (`flow.py`), so a face
stays covered between the detector's searches of its part of the picture. `Window` holds frames
back until they are vouched for, and follows a newly found face back through them.
"""

from edge.track.tracker import Coverage, Tracker
from edge.track.window import Held, Window

__all__ = ["Coverage", "Held", "Tracker", "Window"]
