"""Redaction: every method destroys the face's detail; fill and noise carry nothing of it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, Scene
from edge.config import RedactConfig
from edge.detect import Detections
from edge.evaluate.protection import is_protected, kept_detail
from edge.frames import RawFrame, RedactedFrame
from edge.redact import METHODS, Redactor
from edge.redact.shapes import coverage_mask


def faces_of(boxes: list[tuple[float, float, float, float]]) -> Detections:
    xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32).reshape(-1, 4)
    return Detections(xyxy, np.ones(len(boxes), np.float32))


def redact(image: np.ndarray, boxes: list, **cfg: object) -> RedactedFrame:
    return Redactor(RedactConfig(**cfg)).redact(RawFrame(image.copy(), 0), faces_of(boxes))  # type: ignore[arg-type]


def test_methods_registry_has_no_way_to_skip_redaction() -> None:
    assert set(METHODS) == {"fill", "noise", "blur", "pixelate"}
    for bad in ("none", "off", "passthrough", ""):
        with pytest.raises(ValueError):
            RedactConfig(method=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RedactConfig(mask_scale=0.9)


@pytest.mark.parametrize("method", ["fill", "noise", "blur", "pixelate"])
def test_every_method_protects_the_face(astronaut: np.ndarray, method: str) -> None:
    out = redact(astronaut, [ASTRONAUT_FACE], method=method)
    assert out.faces == 1 and not out.obscured
    assert is_protected(astronaut, out.pixels, ASTRONAUT_FACE)


@pytest.mark.parametrize("method", ["fill", "noise", "blur", "pixelate"])
def test_every_method_protects_small_and_large_faces(group_scene: Scene, method: str) -> None:
    out = redact(group_scene.image, group_scene.faces, method=method)
    for face in group_scene.faces:
        assert kept_detail(group_scene.image, out.pixels, face) < 0.4, face


def test_the_mask_covers_the_whole_face_box_and_head(astronaut: np.ndarray) -> None:
    x, y, w, h = ASTRONAUT_FACE
    mask = coverage_mask(faces_of([ASTRONAUT_FACE]), RedactConfig().mask_scale, 512, 512)
    box = mask[int(y) : int(y + h), int(x) : int(x + w)]
    assert box.mean() > 0.97
    # The head reaches above the brow: the mask must too.
    assert mask[int(y - 0.15 * h), int(x + w / 2)]


@pytest.mark.parametrize("method", ["fill", "noise"])
def test_fill_and_noise_are_not_derived_from_the_face(astronaut: np.ndarray, method: str) -> None:
    """Two different faces under the same mask give outputs independent of the face pixels."""
    other = astronaut[::-1, ::-1].copy()
    a = redact(astronaut, [ASTRONAUT_FACE], method=method).pixels
    b = redact(other, [ASTRONAUT_FACE], method=method).pixels
    mask = coverage_mask(faces_of([ASTRONAUT_FACE]), RedactConfig().mask_scale, 512, 512)
    a_in, b_in = a[mask].astype(float), b[mask].astype(float)
    if method == "fill":
        assert np.array_equal(a_in, b_in)
        assert (a_in == np.array(RedactConfig().color)).all()
    else:
        face_in = astronaut[mask].astype(float).ravel()
        corr = np.corrcoef(face_in, a_in.ravel())[0, 1]
        assert abs(corr) < 0.05


def test_outside_the_masks_nothing_changes(group_scene: Scene) -> None:
    out = redact(group_scene.image, group_scene.faces)
    mask = coverage_mask(faces_of(group_scene.faces), RedactConfig().mask_scale, 720, 1280)
    assert np.array_equal(out.pixels[~mask], group_scene.image[~mask])
    assert (out.pixels[mask] != group_scene.image[mask]).any(axis=-1).mean() > 0.95


def test_obscure_leaves_nothing_of_the_frame(astronaut: np.ndarray) -> None:
    out = Redactor(RedactConfig()).obscure(RawFrame(astronaut.copy(), 3))
    assert out.obscured and out.index == 3
    assert len(np.unique(out.pixels.reshape(-1, 3), axis=0)) == 1


def test_redacted_pixels_are_read_only(astronaut: np.ndarray) -> None:
    out = redact(astronaut, [ASTRONAUT_FACE])
    with pytest.raises(ValueError):
        out.pixels[0, 0] = 0


def test_faces_at_the_frame_edge_are_clipped_not_skipped(astronaut: np.ndarray) -> None:
    edge_face = (-30.0, -20.0, 80.0, 100.0)
    for method in METHODS:
        out = redact(astronaut, [edge_face], method=method)
        assert is_protected(astronaut, out.pixels, (0.0, 0.0, 50.0, 80.0)), method
