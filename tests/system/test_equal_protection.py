"""`veil eval SET --conditions ... --audit-report report.html`: the equal-protection audit page,
made by the real command from the real pipeline on a labelled set built here, then opened in
headless Chromium (Debian's) with a screenshot.

The set has two made-up groups of 24 photos each: in group "seen" the labelled box is the
astronaut's face, in group "unseen" it is a patch of her suit, which no detector covers. So the
page must name "unseen" as the worst group, flag the gap as wider than the intervals, mark it
below target, and say so in its summary; the same page made from a set of faces only must not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, veil
from edge.evaluate.size_sweep import CONDITIONS
from edge.models.manifest import load_manifest
from helpers.browser import artifacts

SUIT = (300.0, 380.0, 90.0, 110.0)  # the suit's chest, below and right of the face
PER_GROUP = 24  # above MIN_RANK_N, so both groups are ranked
CONDS = "clear,low_light+blur"


def _labelled_set(root: Path, *, with_unseen: bool) -> Path:
    import skimage.data

    (root / "images").mkdir(parents=True)
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    records: list[dict[str, Any]] = []
    groups = [("seen", ASTRONAUT_FACE)] + ([("unseen", SUIT)] if with_unseen else [])
    for group, box in groups:
        for i in range(PER_GROUP):
            # Distinct pictures: each shifted by its own offset (edge pixels repeated).
            dx, dy = 3 * (i % 6) - 8, 4 * (i // 6) - 6
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            image = cv2.warpAffine(astronaut, shift, (512, 512), borderMode=cv2.BORDER_REPLICATE)
            x, y, w, h = box
            file = f"images/{group}_{i:02d}.png"
            cv2.imwrite(str(root / file), image)
            labels = {"race_group": group, "gender": "Female" if i % 2 else "Male"}
            records.append(
                {"file": file, "width": 512, "height": 512, "source": "made-here",
                 "subset": "made-here", "faces": [[x + dx, y + dy, w, h]], "labels": labels}
            )  # fmt: skip
    (root / "annotations.json").write_text(json.dumps({"images": records}), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    root = _labelled_set(tmp_path_factory.mktemp("audit-set"), with_unseen=True)
    out = tmp_path_factory.mktemp("audit-out")
    report, summary = out / "report.html", out / "summary.json"
    args = ["--sizes", "16", "--conditions", CONDS, "--audit-report", report, "--json", summary]
    done = veil("eval", root, *args)
    assert done.returncode == 0, done.stderr
    return report, json.loads(summary.read_text()), done.stdout


def test_the_page_names_the_worst_group_and_flags_the_gap(
    audited: tuple[Path, dict[str, Any], str],
) -> None:
    report, summary, stdout = audited
    groups_text = stdout[stdout.index("EQUAL PROTECTION") :]
    assert max(len(line) for line in groups_text.splitlines()) <= 100
    page = report.read_text(encoding="utf-8")
    head, _, rest = page.partition('id="setup"')
    assert 'id="summary"' in head  # the plain summary comes first
    assert re.search(r"least-protected group anywhere was <b>unseen</b>", head)
    assert "wider than chance explains" in head and "fell below their target" in head
    assert page.count("beyond intervals") >= 3  # as stored, and at 16 px in both conditions
    # The worst group of each cell is named, and the summary figures are the JSON's.
    native = summary["groups"]["native"]["sources"][0]["groups"]["race_group"]
    by_group = {c["group"]: c for c in native}
    assert by_group["seen"]["recall"] == 1.0 and by_group["unseen"]["recall"] == 0.0
    assert page.count('<td class="worst">unseen</td>') >= 3
    # What was run: the profile's and every model's SHA-256, each condition's exact recipe.
    assert summary["config_sha256"] in page
    pinned = load_manifest().get("centerface").sha256
    assert summary["models"] == [{"name": "centerface", "sha256": pinned}]
    assert pinned in page
    for name in CONDS.split(","):
        assert CONDITIONS[name].replace("'", "&#x27;") in page
        assert CONDITIONS[name] in " ".join(stdout.split())  # and in the printed report
    # Caveats, and charts drawn as inline SVG, one per condition.
    for words in ("perceived", "estimated", "Crop geometry"):
        assert words in page
    assert page.count("<svg") == len(CONDS.split(","))


def test_a_fair_set_gets_no_flag(tmp_path: Path) -> None:
    root = _labelled_set(tmp_path / "set", with_unseen=False)
    report = tmp_path / "fair.html"
    done = veil("eval", root, "--no-sweep", "--audit-report", report)
    assert done.returncode == 0, done.stderr
    page = report.read_text(encoding="utf-8")
    assert "beyond intervals" not in page and "fell below" not in page
    assert "No gap between groups is wider than the 95 % intervals" in page


def test_the_page_renders_offline_in_chromium(
    browser: Any, audited: tuple[Path, dict[str, Any], str]
) -> None:
    report, _, _ = audited
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    page.goto(report.as_uri())
    page.screenshot(path=str(artifacts() / "audit-report.png"), full_page=True)
    assert requests == [report.as_uri()]  # nothing fetched: no font, script, style or image
    assert problems == []  # the content policy let the page's own style through, and no more
    summary = page.inner_text("#summary")
    assert "unseen" in summary and "protected" in summary
    # The style applied: flagged and below-target cells are coloured; the charts are drawn.
    colour = page.eval_on_selector(".below", "e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(253, 232, 232)"
    boxes = page.eval_on_selector_all("svg", "es => es.map(e => e.getBoundingClientRect().width)")
    assert len(boxes) == 2 and all(width > 300 for width in boxes)
    page.close()


def test_bad_conditions_and_report_paths_are_refused(tmp_path: Path) -> None:
    root = _labelled_set(tmp_path / "set", with_unseen=False)
    done = veil("eval", root, "--conditions", "clear,fog")
    assert done.returncode == 2 and "'fog'" in done.stderr and "low_light+blur" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = veil("eval", root, "--audit-report", tmp_path / "report.txt")
    assert done.returncode == 2 and "*.html" in done.stderr
    unlabelled = tmp_path / "plain"
    (unlabelled / "images").mkdir(parents=True)
    cv2.imwrite(str(unlabelled / "images/a.png"), np.zeros((64, 64, 3), np.uint8))
    record = {"file": "images/a.png", "width": 64, "height": 64, "faces": []}
    (unlabelled / "annotations.json").write_text(json.dumps({"images": [record]}))
    done = veil("eval", unlabelled, "--audit-report", tmp_path / "r.html")
    assert done.returncode == 2 and "no labelled faces" in done.stderr
    assert not (tmp_path / "r.html").exists() and not list(tmp_path.glob("*.partial*"))
