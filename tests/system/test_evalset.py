"""Recall on real annotated images and videos (../shared/eval/dev, faceblur-eval/1). Runs the real
`veil redact` on the whole set. The set is not in the repository: without it these tests say so."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import pytest

from conftest import EVAL_DEV, veil
from edge.evaluate.evalset import EvalSet, load_evalset
from edge.evaluate.metrics import MIN_FACE_PX, FaceResult, misses, recall
from edge.evaluate.runner import score_faces

pytestmark = [
    pytest.mark.evalset,
    pytest.mark.skipif(
        not (EVAL_DEV / "annotations.json").is_file(),
        reason=f"evaluation set not present at {EVAL_DEV}",
    ),
]

TARGET = 0.95


@pytest.fixture(scope="module")
def evalset() -> EvalSet:
    return load_evalset(EVAL_DEV)


@pytest.fixture(scope="module")
def redacted_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "images"
    result = veil("redact", EVAL_DEV / "images", "-o", out)
    assert result.returncode == 0, result.stderr
    return out


def test_images_faces_of_20px_and_more_are_protected(
    evalset: EvalSet, redacted_images: Path
) -> None:
    faces: list[FaceResult] = []
    for item in evalset.images:
        before = cv2.imread(str(EVAL_DEV / item.file))
        after = cv2.imread(str(redacted_images / Path(item.file).relative_to("images")))
        assert after is not None and after.shape == before.shape, item.file
        faces += score_faces(item.file, before, after, item.faces)
    r = recall(faces, MIN_FACE_PX)
    print(
        f"\nimages: {r['protected']}/{r['total']} faces >= {MIN_FACE_PX} px protected "
        f"({r['recall']:.1%})"
    )
    assert r["total"] > 500
    assert r["recall"] >= TARGET, misses(f for f in faces if f.size >= MIN_FACE_PX)[:20]


def test_video_frames_one_for_one_and_faces_protected(evalset: EvalSet, tmp_path: Path) -> None:
    faces: list[FaceResult] = []
    for video in evalset.videos:
        out = tmp_path / Path(video.file).name
        result = veil("redact", EVAL_DEV / video.file, "-o", out)
        assert result.returncode == 0, result.stderr
        with av.open(str(EVAL_DEV / video.file)) as a, av.open(str(out)) as b:
            frames_in = [f.to_ndarray(format="bgr24") for f in a.decode(video=0)]
            frames_out = [f.to_ndarray(format="bgr24") for f in b.decode(video=0)]
        assert len(frames_out) == len(frames_in) == video.num_frames, video.file
        assert frames_out[0].shape == frames_in[0].shape
        for ann in video.frames:
            before, after = frames_in[ann.index], frames_out[ann.index]
            faces += score_faces(video.file, before, after, ann.faces, frame=ann.index)
    r = recall(faces, MIN_FACE_PX)
    print(
        f"\nvideo: {r['protected']}/{r['total']} face-frames >= {MIN_FACE_PX} px protected "
        f"({r['recall']:.1%})"
    )
    assert r["total"] > 1000
    assert r["recall"] >= TARGET
