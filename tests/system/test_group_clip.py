"""The live loop measured by group: `veil eval GROUPS --make-live-clip` writes a dim body-camera
clip of the groups set's labelled faces with exact boxes and each face's labels; `veil run`
plays it as a camera; `veil eval CLIP --recording` scores the recording per group. The boxes are
checked against the real detector's work: a box that missed its face would leak."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from conftest import GROUPS_DEV, ROOT, veil
from edge.evaluate.evalset import load_evalset
from edge.evaluate.group_clip import SIZES, VIEW, ZOOM

pytestmark = pytest.mark.skipif(
    not (GROUPS_DEV / "annotations.json").is_file(),
    reason=f"groups evaluation set not present at {GROUPS_DEV}",
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("groups") / "clip"
    made = veil("eval", GROUPS_DEV, "--make-live-clip", out, "--seconds", "3")
    assert made.returncode == 0, made.stderr
    assert "90 frames" in made.stdout
    return out


def test_the_clip_holds_the_sets_faces_with_their_labels_and_exact_sizes(clip: Path) -> None:
    annotations = json.loads((clip / "annotations.json").read_text())
    (video,) = annotations["videos"]
    with av.open(str(clip / video["file"])) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == VIEW
        assert sum(1 for _ in container.decode(video=0)) == video["num_frames"] == 90
    labelled = {
        item.file: item.labels
        for item in load_evalset(GROUPS_DEV).images
        if item.source == "fairface" and item.labels
    }
    subjects = video["subjects"]
    assert len(subjects) == len(labelled)  # every FairFace face, and only those
    assert sorted(map(str, subjects.values())) == sorted(map(str, labelled.values()))
    seen = set()
    for frame in video["frames"]:
        assert len(frame["subjects"]) == len(frame["faces"])
        for subject, (x, y, w, h) in zip(frame["subjects"], frame["faces"], strict=True):
            seen.add(subject)
            assert 0 <= x and x + w <= VIEW[0] and 0 <= y and y + h <= VIEW[1]
            low, high = SIZES[0] * (1 - ZOOM) - 0.5, SIZES[1] * (1 + ZOOM) + 0.5
            assert low <= min(w, h) <= high
    assert len(seen) >= 10  # a crowd passes in three seconds


def test_a_run_on_the_clip_is_scored_by_group(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    run = veil(
        "run",
        "--config",
        ROOT / "configs" / "recorded.toml",
        "--source",
        f"file:{clip / 'videos' / 'groups_dusk.mp4'}",
        "--output-dir",
        out,
    )
    assert run.returncode == 0, run.stderr
    report = tmp_path / "score.json"
    scored = veil("eval", clip, "--recording", out, "--json", report)
    assert scored.returncode == 0, scored.stderr
    score = json.loads(report.read_text())
    annotations = json.loads((clip / "annotations.json").read_text())
    face_frames = sum(len(f["faces"]) for f in annotations["videos"][0]["frames"])
    assert score["recorded"] == 90 and score["face_frames"] == face_frames
    every = score["groups"]["0px"]["race_group"]
    assert sum(c["face_frames"] for c in every.values()) == face_frames
    assert sum(c["protected"] for c in every.values()) == score["protected"]
    # The boxes are where the faces are: the real pipeline's masks cover nearly all of them.
    assert score["protected"] >= 0.95 * face_frames
    assert "by perceived race (every face):" in scored.stdout
    assert "faces of 15px and more" in scored.stdout
    # The audit page shows the live figures beside the stills.
    page = tmp_path / "audit.html"
    audit = veil(
        "eval",
        GROUPS_DEV,
        "--no-sweep",
        "--limit",
        "20",
        "--audit-report",
        page,
        "--live-score",
        report,
    )
    assert audit.returncode == 0, audit.stderr
    html = page.read_text()
    assert "Live: <code>veil run</code> on a dim body-camera clip" in html
    for group, cell in every.items():
        assert f"{cell['protected']} / {cell['face_frames']}" in html, group
    # A score that is not a labelled clip's is refused, in one line, before any work.
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({**score, "groups": None}))
    refused = veil("eval", GROUPS_DEV, "--audit-report", page, "--live-score", plain)
    assert refused.returncode != 0 and "not a labelled clip's recording score" in refused.stderr
