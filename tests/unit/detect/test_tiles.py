"""Small faces in large stills: overlapping tiles searched at full resolution."""

from __future__ import annotations

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ASTRONAUT_FACE
from edge.config import CenterFaceConfig, DetectorConfig
from edge.detect import build_detector
from edge.detect.tiles import tile_grid


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(64, 2048), st.integers(0, 200))
def test_tiles_cover_the_image_and_overlap_enough(
    height: int, width: int, side: int, overlap: int
) -> None:
    overlap = min(overlap, side - 1)
    tiles = tile_grid(height, width, side, overlap)
    covered = np.zeros((min(height, 300), min(width, 300)), bool)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert x1 - x0 <= side and y1 - y0 <= side
    xs = sorted({(x0, x1) for x0, _, x1, _ in tiles})
    ys = sorted({(y0, y1) for _, y0, _, y1 in tiles})
    for spans, length in ((xs, width), (ys, height)):
        assert spans[0][0] == 0 and spans[-1][1] == length
        for (_, a1), (b0, _) in zip(spans, spans[1:], strict=False):
            assert a1 - b0 >= overlap  # neighbours overlap: a face narrower than this fits whole
    for x0, y0, x1, y1 in tiles:
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def small_face_photo(astronaut: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    """A 4000x3000 'phone photo' with the real astronaut face about 14 px wide, far away."""
    rng = np.random.default_rng(7)
    canvas = cv2.GaussianBlur(rng.integers(90, 170, (3000, 4000, 3), dtype=np.uint8), (0, 0), 3)
    scale = 0.15
    cut = astronaut[20:300, 110:350]
    sprite = cv2.resize(cut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x, y = 2500, 1700
    canvas[y : y + sprite.shape[0], x : x + sprite.shape[1]] = sprite
    fx, fy, fw, fh = ASTRONAUT_FACE
    return canvas, (x + (fx - 110) * scale, y + (fy - 20) * scale, fw * scale, fh * scale)


def hits(found_xyxy: np.ndarray, face: tuple[float, ...]) -> bool:
    x, y, w, h = face
    cx, cy = x + w / 2, y + h / 2
    return any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in found_xyxy.tolist())


def test_a_distant_face_in_a_large_photo_is_found_by_the_full_resolution_tiles(
    astronaut: np.ndarray,
) -> None:
    photo, face = small_face_photo(astronaut)
    assert 12 <= face[2] <= 16
    tiled = build_detector(DetectorConfig(), still=True)
    assert hits(tiled.detect(photo).xyxy, face)
    # The whole-image pass alone (the photo shrunk to 2048 px) does not see it: that is why.
    cfg = DetectorConfig(
        centerface=CenterFaceConfig(max_side=2048, max_downscale=4.0, fine_scale=0.0)
    )
    whole = build_detector(cfg, still=False)
    assert not hits(whole.detect(photo).xyxy, face)


def test_tiling_does_not_lose_a_large_face(astronaut: np.ndarray) -> None:
    big = cv2.resize(astronaut, (3000, 3000), interpolation=cv2.INTER_LINEAR)
    x, y, w, h = (v * 3000 / 512 for v in ASTRONAUT_FACE)
    found = build_detector(DetectorConfig(), still=True).detect(big)
    assert any(
        x1 - x0 > 0.6 * w and hits(np.array([[x0, y0, x1, y1]]), (x, y, w, h))
        for x0, y0, x1, y1 in found.xyxy.tolist()
    )
