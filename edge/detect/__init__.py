"""Detection stage: `FaceDetector` and a plain registry of its backends."""

from __future__ import annotations

from collections.abc import Callable

from edge.config import DetectorConfig
from edge.detect.base import FaceDetector
from edge.detect.detections import Detections
from edge.detect.exposure import LowLight
from edge.errors import ConfigError
from edge.models.manifest import load_manifest


def low_light(cfg: DetectorConfig) -> LowLight:
    own = cfg.low_light
    return LowLight(own.mode, own.dark_below, own.target)


def _centerface(cfg: DetectorConfig, still: bool, sweep: tuple[int, int]) -> FaceDetector:
    from edge.detect.centerface import CenterFace
    from edge.detect.sweep import Sweep

    own = cfg.centerface
    fine: float | None
    if still:
        fine, regions = own.still_upscale, None
    else:
        fine, regions = own.fine_scale or None, Sweep(*own.fine_grid, own.fine_margin, *sweep)
    return CenterFace(
        threshold=own.threshold,
        nms_iou=cfg.nms_iou,
        max_side=own.still_max_side if still else own.max_side,
        max_downscale=own.max_downscale,
        fine_scale=fine,
        sweep=regions,
        threads=cfg.threads,
        providers=own.providers,
        low_light=low_light(cfg),
    )


def _blazeface(cfg: DetectorConfig, still: bool, sweep: tuple[int, int]) -> FaceDetector:
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


# Each factory gets the whole detector config, whether it will see still images (which may be
# larger and are worth more time per frame than video), and how a live source spreads a fine
# pass over frames: (sweep, whole_every); (1, 1) for recorded media, which search all of it on
# every frame.
DETECTORS: dict[str, Callable[[DetectorConfig, bool, tuple[int, int]], FaceDetector]] = {
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


def build_detector(
    cfg: DetectorConfig, *, still: bool = False, sweep: tuple[int, int] = (1, 1)
) -> FaceDetector:
    """The configured detector, or an `Ensemble` of several whose boxes are all kept.
    `sweep`: a live source's (`live.sweep`, `live.whole_every`), for video."""
    members: list[FaceDetector] = []
    for backend in cfg.backends():
        try:
            factory = DETECTORS[backend]
        except KeyError:
            raise ConfigError(f"unknown detector backend {backend!r}") from None
        members.append(factory(cfg, still, sweep))
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
