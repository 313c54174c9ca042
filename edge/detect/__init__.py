"""Detection stage: `FaceDetector` and a plain registry of its backends."""

from __future__ import annotations

from collections.abc import Callable

from edge.config import DetectorConfig
from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.errors import ConfigError


def _centerface(cfg: DetectorConfig, still: bool) -> FaceDetector:
    from edge.detect.centerface import CenterFace

    own = cfg.centerface
    return CenterFace(
        threshold=own.threshold,
        nms_iou=cfg.nms_iou,
        max_side=own.still_max_side if still else own.max_side,
        max_downscale=own.max_downscale,
        fine_scale=own.still_upscale if still else None,
        threads=cfg.threads,
    )


def _blazeface(cfg: DetectorConfig, still: bool) -> FaceDetector:
    from edge.detect.blazeface import BlazeFace

    own = cfg.blazeface
    return BlazeFace(
        model=own.model,
        threshold=own.threshold,
        nms_iou=cfg.nms_iou,
        tiles=own.still_tiles if still else own.tiles,
        tile_overlap=own.tile_overlap,
        threads=cfg.threads,
    )


# Each factory gets the whole detector config and whether it will see still images (which may
# be larger and are worth more time per frame than video).
DETECTORS: dict[str, Callable[[DetectorConfig, bool], FaceDetector]] = {
    "centerface": _centerface,
    "blazeface": _blazeface,
}


def model_names(cfg: DetectorConfig) -> tuple[str, ...]:
    """The manifest names of the models the configured detector(s) load, for the audit log."""
    names = {"centerface": "centerface", "blazeface": f"blazeface-{cfg.blazeface.model}"}
    return tuple(names[backend] for backend in cfg.backends())


def build_detector(cfg: DetectorConfig, *, still: bool = False) -> FaceDetector:
    """The configured detector, or an `Ensemble` of several whose boxes are all kept."""
    members: list[FaceDetector] = []
    for backend in cfg.backends():
        try:
            factory = DETECTORS[backend]
        except KeyError:
            raise ConfigError(f"unknown detector backend {backend!r}") from None
        members.append(factory(cfg, still))
    if len(members) == 1:
        return members[0]
    from edge.detect.ensemble import Ensemble

    return Ensemble(members)


__all__ = ["DETECTORS", "Detections", "FaceDetector", "build_detector", "model_names"]
