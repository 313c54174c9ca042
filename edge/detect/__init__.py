"""Detection stage: `FaceDetector` and a plain registry of its backends."""

from __future__ import annotations

from collections.abc import Callable

from edge.config import DetectorConfig
from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.errors import ConfigError


def _centerface(cfg: DetectorConfig) -> FaceDetector:
    from edge.detect.centerface import CenterFace

    return CenterFace(
        threshold=cfg.threshold,
        nms_iou=cfg.nms_iou,
        max_side=cfg.max_side,
        max_downscale=cfg.max_downscale,
        threads=cfg.threads,
    )


DETECTORS: dict[str, Callable[[DetectorConfig], FaceDetector]] = {
    "centerface": _centerface,
}


def build_detector(cfg: DetectorConfig) -> FaceDetector:
    try:
        factory = DETECTORS[cfg.backend]
    except KeyError:
        raise ConfigError(f"unknown detector backend {cfg.backend!r}") from None
    return factory(cfg)


__all__ = ["DETECTORS", "Detections", "FaceDetector", "build_detector"]
