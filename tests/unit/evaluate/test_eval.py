"""`veil eval`: the real pipeline over a small `faceblur-eval/1` set built from real face photos and
the generated clip of real faces, the counting it reports, and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, EVAL_DEV, Clip, Scene, veil
from edge.evaluate.metrics import FaceResult, VideoResult, longest_run, size_label
from edge.evaluate.overredaction import over_redaction

# A textured patch with no face in it, annotated as if it held one: the measure must call it
# unprotected, or it would be vacuous.
DECOY_BOX = (120.0, 140.0, 90.0, 110.0)
WIDER_ATTRS = {"blur": 0, "expression": 0, "illumination": 0, "occlusion": 0, "pose": 0}


def _brick() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(cv2.cvtColor(skimage.data.brick(), cv2.COLOR_GRAY2BGR))


@dataclass(frozen=True)
class EvalSet:
    root: Path
    video_truth: list[list[tuple[float, float, float, float]]]


@pytest.fixture(scope="module")
def small_set(
    tmp_path_factory: pytest.TempPathFactory,
    astronaut: np.ndarray,
    group_scene: Scene,
    sample_clip: Clip,
) -> EvalSet:
    root = tmp_path_factory.mktemp("evalset")
    (root / "images").mkdir()
    (root / "videos").mkdir()
    assert cv2.imwrite(str(root / "images" / "astronaut.png"), astronaut)
    assert cv2.imwrite(str(root / "images" / "group.png"), group_scene.image)
    assert cv2.imwrite(str(root / "images" / "decoy.png"), _brick())
    shutil.copy(sample_clip.path, root / "videos" / "sample.mp4")

    def image(name: str, pixels: np.ndarray, faces: list[Any], **extra: Any) -> dict[str, Any]:
        h, w = pixels.shape[:2]
        return {"file": f"images/{name}", "width": w, "height": h, "faces": faces, **extra}

    annotations = {
        "format": "faceblur-eval/1",
        "images": [
            image(
                "astronaut.png",
                astronaut,
                [list(ASTRONAUT_FACE)],
                exhaustive=True,
                face_attrs=[WIDER_ATTRS],
            ),
            image("group.png", group_scene.image, [list(f) for f in group_scene.faces]),
            image("decoy.png", _brick(), [list(DECOY_BOX)], exhaustive=False),
        ],
        "videos": [
            {
                "file": "videos/sample.mp4",
                "width": 1280,
                "height": 720,
                "fps": 30,
                "num_frames": len(sample_clip.truth),
                "exhaustive": True,
                "frames": [
                    {"index": k, "faces": [list(b) for b in boxes]}
                    for k, boxes in enumerate(sample_clip.truth)
                ],
            }
        ],
    }
    (root / "annotations.json").write_text(json.dumps(annotations), encoding="utf-8")
    return EvalSet(root, sample_clip.truth)


@dataclass(frozen=True)
class Run:
    result: subprocess.CompletedProcess[str]
    data: dict[str, Any]
    chart: Path
    out: Path


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def run(small_set: EvalSet, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("eval-out")
    before = _listing(small_set.root)
    result = veil(
        "eval", small_set.root, "--json", out / "r.json", "--chart", out / "r.html", cwd=out
    )
    assert result.returncode == 0, result.stderr
    # In memory: nothing is written but the two reports, the set itself is untouched.
    assert _listing(small_set.root) == before
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json"]
    data = json.loads((out / "r.json").read_text(encoding="utf-8"))
    return Run(result, data, out / "r.html", out)


def test_counts_and_recall_on_real_faces(run: Run) -> None:
    images, videos = run.data["images"], run.data["videos"]
    assert images["count"] == 3
    assert images["faces"]["total"] == 1 + 5 + 1
    # Every real face is protected; only the decoy is missed.
    assert images["faces"]["protected"] == 6
    assert images["faces_20px_up"]["protected"] == images["faces_20px_up"]["total"] - 1
    assert sum(b["total"] for b in images["by_size"]) == 7
    assert images["by_attribute"]["blur"]["0"] == {"protected": 1, "total": 1, "recall": 1.0}
    assert set(images["by_attribute"]) == {"blur", "occlusion", "pose", "illumination"}

    assert videos["count"] == 1 and videos["frames"] == 60
    assert videos["face_frames"]["total"] == 60 * 4
    assert videos["face_frames"]["recall"] >= 0.97
    (clip,) = videos["per_video"]
    assert clip["frames_with_leak"] <= 60 * 0.05
    assert clip["longest_leak_run"] <= clip["frames_with_leak"]
    assert run.data["pipeline"]["images"]["fail_closed"] == 0
    assert run.data["pipeline"]["videos"]["frames"] == 60
    # The table on stdout carries the same numbers.
    (row,) = [
        s.split() for s in run.result.stdout.splitlines() if s.strip().startswith("all sizes")
    ]
    assert row[2:4] == ["6", "7"]
    assert f"{videos['face_frames']['protected']}/240" in run.result.stdout


def test_a_face_box_on_no_face_is_reported_as_a_leak(run: Run) -> None:
    (miss,) = [m for m in run.data["images"]["misses"] if m["file"] == "images/decoy.png"]
    assert miss["box"] == list(DECOY_BOX)
    assert miss["size_px"] == 90.0
    assert miss["kept"] > 0.9  # the brick wall came out as it went in


def test_over_redaction_is_near_zero_where_only_the_face_is_redacted(run: Run) -> None:
    over = run.data["over_redaction"]
    assert over["images"] == 2  # the decoy is not exhaustive and is not scored
    per_image = {i["file"]: i for i in over["per_image"]}
    astronaut = per_image["images/astronaut.png"]
    assert astronaut["textured_cells"] > 200  # a real measurement, not an empty one
    assert astronaut["share"] < 0.02
    assert over["share"] < 0.02
    # The clip is exhaustively annotated too: its frames are scored, apart from the images.
    assert over["videos"]["count"] == 1
    assert over["videos"]["textured_cells"] > 60 * 200
    assert over["videos"]["share"] < 0.02


def test_over_redaction_flags_destroyed_texture(astronaut: np.ndarray) -> None:
    filled = np.full_like(astronaut, 64)
    everything = over_redaction(astronaut, filled, [ASTRONAUT_FACE])
    assert everything.textured > 200
    assert everything.destroyed == everything.textured
    assert over_redaction(astronaut, astronaut.copy(), [ASTRONAUT_FACE]).destroyed == 0
    # Half of the picture filled: about half of the textured cells away from the face destroyed.
    half = astronaut.copy()
    half[:, 256:] = 64
    count = over_redaction(astronaut, half, [ASTRONAUT_FACE])
    assert count.share is not None and 0.3 < count.share < 0.7
    # Cells near the face are not scored: with the face box covering the picture, nothing is.
    assert over_redaction(astronaut, filled, [(128.0, 128.0, 256.0, 256.0)]).textured == 0


@pytest.mark.parametrize(
    ("flags", "longest"),
    [
        ([], 0),
        ([False] * 5, 0),
        ([True], 1),
        ([True, True, False, True, True, True, False], 3),
        ([False, True, True, True, True], 4),
        ([True, False] * 4, 1),
    ],
)
def test_longest_leak_run(flags: list[bool], longest: int) -> None:
    assert longest_run(flags) == longest


def test_video_leaks_are_per_frame() -> None:
    def face(frame: int, protected: bool) -> FaceResult:
        return FaceResult("v.mp4", (0.0, 0.0, 30.0, 30.0), protected, 0.0, frame)

    video = VideoResult(
        "v.mp4",
        8,
        [face(0, True), face(1, False), face(1, False), face(2, False), face(5, False)],
        0,
    )
    # Two leaked faces on frame 1 make one leaked frame; frames 3-4 carry no annotation.
    assert video.leaks() == [False, True, True, False, False, True, False, False]
    assert longest_run(video.leaks()) == 2


@pytest.mark.parametrize(
    ("size", "label"), [(9.9, "<10"), (10, "10-20"), (19.9, "10-20"), (40, "40-80"), (500, "80+")]
)
def test_size_bins(size: float, label: str) -> None:
    assert size_label(size) == label


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_chart_is_a_well_formed_self_contained_page(run: Run) -> None:
    text = run.chart.read_text(encoding="utf-8")
    root = ET.fromstring(text.removeprefix("<!DOCTYPE html>"))  # well-formed as XML, too
    svg = root.find(".//{http://www.w3.org/2000/svg}svg")
    assert svg is not None
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2  # images and video face-frames by size
    parser = _Tags()
    parser.feed(text)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")


def test_labelled_images_get_the_group_audit(astronaut: np.ndarray, tmp_path: Path) -> None:
    root = tmp_path / "groups"
    (root / "images").mkdir(parents=True)
    assert cv2.imwrite(str(root / "images" / "a.png"), astronaut)
    record = {
        "file": "images/a.png",
        "width": 512,
        "height": 512,
        "subset": "demo",
        "exhaustive": False,
        "faces": [list(ASTRONAUT_FACE)],
        "labels": {"race_group": "White", "gender": "Female"},
    }
    _write(root, {"images": [record]})  # the groups sets carry no format key
    result = veil(
        "eval",
        root,
        "--sizes",
        "16,32",
        "--json",
        tmp_path / "g.json",
        "--chart",
        tmp_path / "g.html",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert isinstance(data["groups"], dict) and "skipped" not in data["groups"]
    assert data["pipeline"]["groups"]["frames"] >= 1  # the audit ran the real pipeline
    svg = ET.fromstring(
        (tmp_path / "g.html").read_text(encoding="utf-8").removeprefix("<!DOCTYPE html>")
    )
    assert len(svg.findall(".//{http://www.w3.org/2000/svg}polyline")) >= 2


def _write(root: Path, payload: object) -> Path:
    root.mkdir(exist_ok=True)
    text = payload if isinstance(payload, str) else json.dumps(payload)
    (root / "annotations.json").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("make", "extra", "code", "says"),
    [
        (lambda t: t / "nothere", [], 2, "not a folder"),
        (lambda t: t, [], 2, "no annotations.json"),
        (lambda t: _write(t / "s", "{not json"), [], 2, "not valid JSON"),
        (lambda t: _write(t / "s", {"format": "faceblur-eval/9"}), [], 2, "unsupported format"),
        (lambda t: _write(t / "s", {"images": [{"file": "a.jpg"}]}), [], 2, "images.0"),
        (
            lambda t: _write(
                t / "s",
                {"images": [{"file": "a.jpg", "width": 9, "height": 9, "faces": []}]},
            ),
            [],
            1,
            "not found",
        ),
        (lambda t: _write(t / "s", {}), ["--chart", "c.png"], 2, "html"),
        (lambda t: _write(t / "s", {}), ["--sizes", "12,x"], 2, "--sizes"),
        (lambda t: _write(t / "s", {}), ["--limit", "0"], 2, "--limit"),
    ],
    ids=[
        "missing-folder",
        "no-annotations",
        "bad-json",
        "unknown-format",
        "bad-record",
        "missing-media",
        "chart-suffix",
        "bad-sizes",
        "bad-limit",
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    tmp_path: Path, make: Any, extra: list[str], code: int, says: str
) -> None:
    target = make(tmp_path)
    result = veil("eval", target, "--json", tmp_path / "r.json", *extra, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("veil: error: "), result.stderr
    assert says in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "r.json").exists()
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.evalset
@pytest.mark.skipif(
    not (EVAL_DEV / "annotations.json").is_file(),
    reason=f"evaluation set not present at {EVAL_DEV}",
)
def test_dev_set_quick_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "eval",
            str(EVAL_DEV),
            "--limit",
            "3",
            "--json",
            str(tmp_path / "dev.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "dev.json").read_text(encoding="utf-8"))
    assert data["format"] == "veil-eval/1" and data["limit"] == 3
    images, videos = data["images"], data["videos"]
    assert images["count"] == 3 and videos["count"] == 3
    assert [b["bin"] for b in images["by_size"]][-4:] == ["10-20", "20-40", "40-80", "80+"]
    assert images["faces"]["total"] == sum(b["total"] for b in images["by_size"])
    assert set(images["by_attribute"]) == {"blur", "occlusion", "pose", "illumination"}
    for video in videos["per_video"]:
        assert {"frames", "face_frames", "frames_with_leak", "longest_leak_run"} <= set(video)
        assert video["face_frames"]["total"] == video["frames"]  # YouTube Faces: one per frame
    assert 0 <= data["over_redaction"]["share"] <= 1
    for miss in images["misses"] + videos["misses"]:
        assert {"file", "box", "size_px"} <= set(miss)
    assert videos["face_frames"]["recall"] >= 0.9
