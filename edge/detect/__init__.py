"""Detection stage: `FaceDetector` and a plain registry of its backends."""

from __future__ import annotations

from collections.abc import Callable

from edge.config import DetectorConfig
from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.detect.exposure import LowLight
from edge.detect.second_look import SecondLook
from edge.errors import ConfigError
from edge.models.manifest import load_manifest


def low_light(cfg: DetectorConfig) -> LowLight:
    own = cfg.low_light
    return LowLight(own.mode, own.dark_below, own.target)


def _centerface(cfg: DetectorConfig, still: bool) -> FaceDetector:
    from edge.detect.centerface import CenterFace

    own = cfg.centerface
    return CenterFace(
        threshold=own.threshold,
        nms_iou=cfg.nms_iou,
        max_side=own.still_max_side if still else own.max_side,
        max_downscale=own.max_downscale,
        fine_scale=own.still_upscale if still else (own.fine_scale or None),
        fine_grid=own.fine_grid,
        fine_margin=own.fine_margin,
        still=still,
        threads=cfg.threads,
        providers=own.providers,
        low_light=low_light(cfg),
        second_look=(
            SecondLook(own.still_faint_from, own.still_faint_most)
            if own.still_faint_from > 0
            else None
        ),
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
        low_light=low_light(cfg),
        video=not still,
    )


# Each factory gets the whole detector config, and whether it will see still images (which may be
# larger and are worth more time per frame than video). How a run spreads a video detector's
# passes over frames is the run's (`edge.run.schedule`).
DETECTORS: dict[str, Callable[[DetectorConfig, bool], FaceDetector]] = {
    "centerface": _centerface,
    "blazeface": _blazeface,
}


def model_names(cfg: DetectorConfig) -> tuple[str, ...]:
    """The manifest names of the models the configured detector(s) load, for the audit log."""
    names = {"centerface": "centerface", "blazeface": f"blazeface-{cfg.blazeface.model}"}
    return tuple(names[backend] for backend in cfg.backends())


def pinned_models(cfg: DetectorConfig) -> list[dict[str, str]]:
    """Name and pinned SHA-256 of each model the configured detector(s) load: what the audit
    log's `run_start` and `veil eval`'s report name."""
    manifest = load_manifest()
    return [{"name": name, "sha256": manifest.get(name).sha256} for name in model_names(cfg)]


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


def providers_of(detector: FaceDetector) -> tuple[str | None, tuple[str, ...]]:
    """(the onnxruntime provider CenterFace runs on, the providers asked for that do not run);
    (None, ()) for a detector without CenterFace (BlazeFace runs on LiteRT's CPU kernels)."""
    for member in getattr(detector, "members", (detector,)):
        provider = getattr(member, "provider", None)
        if isinstance(provider, str):
            return provider, tuple(getattr(member, "fallback", ()))
    return None, ()


def fallback_warning(detector: FaceDetector) -> str | None:
    """The one stderr line a provider fallback gets; None when the first one asked for runs."""
    provider, fallback = providers_of(detector)
    if not fallback:
        return None
    verb = "is" if len(fallback) == 1 else "are"
    return (
        f"veil: warning: {', '.join(fallback)} {verb} not available; CenterFace runs on {provider}"
    )


__all__ = [
    "DETECTORS",
    "Detections",
    "FaceDetector",
    "build_detector",
    "fallback_warning",
    "model_names",
    "pinned_models",
    "providers_of",
]
