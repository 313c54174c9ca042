"""Non-maximum suppression: one box per face within one detector's output."""

from __future__ import annotations

import cv2
import numpy as np

from edge.detect.detections import Detections


def nms(found: Detections, iou: float) -> Detections:
    """Merge duplicate boxes of one face, keeping the highest score."""
    if len(found) < 2:
        return found
    xywh = np.concatenate([found.xyxy[:, :2], found.xyxy[:, 2:] - found.xyxy[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), found.scores.tolist(), 0.0, iou)
    return found[np.asarray(keep, dtype=np.intp).reshape(-1)]
