"""The real CenterFace model on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, Scene
from edge.config import DetectorConfig
from edge.detect import Detections, build_detector
from edge.detect.centerface import CenterFace, decode, nms


def iou(box_xyxy: np.ndarray, face: tuple[float, float, float, float]) -> float:
    x, y, w, h = face
    ix = max(0.0, min(box_xyxy[2], x + w) - max(box_xyxy[0], x))
    iy = max(0.0, min(box_xyxy[3], y + h) - max(box_xyxy[1], y))
    inter = ix * iy
    union = (box_xyxy[2] - box_xyxy[0]) * (box_xyxy[3] - box_xyxy[1]) + w * h - inter
    return float(inter / union)


@pytest.fixture(scope="module")
def detector() -> CenterFace:
    return CenterFace(max_side=2048)


def test_finds_the_astronaut_face(detector: CenterFace, astronaut: np.ndarray) -> None:
    found = detector.detect(astronaut)
    assert len(found) >= 1
    best = max(iou(b, ASTRONAUT_FACE) for b in found.xyxy)
    assert best > 0.5
    assert found.scores.max() > 0.8


def test_finds_every_face_of_a_group_at_five_sizes(
    detector: CenterFace, group_scene: Scene
) -> None:
    found = detector.detect(group_scene.image)
    for face in group_scene.faces:
        assert max(iou(b, face) for b in found.xyxy) > 0.4, f"missed face {face}"


def test_default_video_resolution_finds_faces_from_25_px(group_scene: Scene) -> None:
    found = build_detector(DetectorConfig()).detect(group_scene.image)
    for face in group_scene.faces:
        assert max(iou(b, face) for b in found.xyxy) > 0.3, f"missed face {face}"


@pytest.mark.parametrize("size", [(240, 320), (360, 640), (720, 1280), (333, 517)])
def test_boxes_land_in_frame_coordinates_at_any_size(
    detector: CenterFace, astronaut: np.ndarray, size: tuple[int, int]
) -> None:
    h, w = size
    image = cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)
    sx, sy = w / astronaut.shape[1], h / astronaut.shape[0]
    x, y, fw, fh = ASTRONAUT_FACE
    face = (x * sx, y * sy, fw * sx, fh * sy)
    found = detector.detect(image)
    assert max(iou(b, face) for b in found.xyxy) > 0.45
    assert (found.xyxy[:, 0::2] >= 0).all() and (found.xyxy[:, 0::2] <= w).all()
    assert (found.xyxy[:, 1::2] >= 0).all() and (found.xyxy[:, 1::2] <= h).all()


def test_input_size_is_a_multiple_of_32_within_the_budget(detector: CenterFace) -> None:
    small = CenterFace(max_side=640)
    for h, w in [(720, 1280), (1080, 1920), (480, 640), (100, 100), (1280, 720)]:
        ih, iw = small.input_size(h, w)
        assert ih % 32 == 0 and iw % 32 == 0
        budget = max(640, max(h, w) / 2)  # max_side, but never shrunk more than 2x
        assert max(ih, iw) <= budget + 16
        assert max(ih, iw) >= min(max(h, w), budget) - 16
        assert abs((iw / ih) - (w / h)) / (w / h) < 0.25


def test_no_faces_in_a_faceless_picture(detector: CenterFace) -> None:
    import skimage.data

    bricks = cv2.cvtColor(skimage.data.brick(), cv2.COLOR_GRAY2BGR)
    assert len(detector.detect(bricks)) == 0
    flat = np.full((480, 640, 3), 128, np.uint8)
    assert len(detector.detect(flat)) == 0


def test_detections_hold_boxes_and_scores_only() -> None:
    fields = set(Detections.__dataclass_fields__)
    assert fields == {"xyxy", "scores"}
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 5), np.float32), np.zeros(2, np.float32))


def test_decode_places_a_box_at_the_heatmap_peak() -> None:
    heat = np.zeros((10, 12), np.float32)
    heat[4, 6] = 0.9
    log_size = np.zeros((2, 10, 12), np.float32)
    log_size[0, 4, 6] = np.log(20 / 4)  # 20 px tall
    log_size[1, 4, 6] = np.log(16 / 4)  # 16 px wide
    offset = np.zeros((2, 10, 12), np.float32)
    offset[:, 4, 6] = 0.25
    found = decode(heat, log_size, offset, 0.5)
    assert len(found) == 1
    cx, cy = (6 + 0.25 + 0.5) * 4, (4 + 0.25 + 0.5) * 4
    np.testing.assert_allclose(found.xyxy[0], [cx - 8, cy - 10, cx + 8, cy + 10], atol=1e-4)
    assert len(decode(heat, log_size, offset, 0.95)) == 0


def test_nms_merges_duplicates_but_keeps_neighbours() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [30, 0, 40, 10]], np.float32)
    kept = nms(Detections(boxes, np.array([0.9, 0.8, 0.7], np.float32)), 0.4)
    assert len(kept) == 2
    assert kept.scores.tolist() == pytest.approx([0.9, 0.7])


def test_large_frames_are_not_shrunk_past_the_point_of_missing_faces(astronaut: np.ndarray) -> None:
    """1080p with 28x36 px faces: a plain 640-px budget (a third of the size) loses them; the
    default never shrinks more than 2x and finds every one."""
    import skimage.data

    canvas = cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (1920, 1080))
    cut = astronaut[0:330, 100:360]
    sprite = cv2.resize(cut, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    h, w = sprite.shape[:2]
    faces = []
    for i in range(6):
        x, y = 100 + i * 300, 200 + (i % 2) * 400
        canvas[y : y + h, x : x + w] = sprite
        fx, fy, fw, fh = ASTRONAUT_FACE
        faces.append((x + (fx - 100) * 0.3, y + fy * 0.3, fw * 0.3, fh * 0.3))

    def found(det: CenterFace) -> int:
        boxes = det.detect(canvas).xyxy
        return sum(max((iou(b, f) for b in boxes), default=0.0) > 0.3 for f in faces)

    default = build_detector(DetectorConfig())
    assert default.input_size(1080, 1920) == (544, 960)  # type: ignore[attr-defined]
    assert found(default) == len(faces)  # type: ignore[arg-type]
    assert found(CenterFace(max_side=640, max_downscale=4.0)) < len(faces) // 2
