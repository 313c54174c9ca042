"""The equal-protection report: Wilson intervals, the size-sweep renderer, per-group recall on a
tiny labelled set of real photos (with a real and a deliberately broken pipeline), and, when the
groups set is present, a native pass on a stratified slice of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, GROUPS_DEV
from edge.config import Config
from edge.detect import build_detector
from edge.evaluate.evalset import ImageItem, load_evalset
from edge.evaluate.groups import (
    IN_SOURCE,
    MIN_RANK_N,
    Outcome,
    evaluate_groups,
    summarise,
    sweep_series,
    wilson,
)
from edge.evaluate.groups_text import render_groups
from edge.evaluate.size_sweep import (
    CANVAS,
    apply_condition,
    background,
    placement,
    render_face,
)
from edge.frames import Pixels, RawFrame
from edge.redact import Redactor

# Hand-drawn face box of skimage.data.camera() (the cameraman, half profile): brow to chin, ear to
# nose tip.
CAMERA_FACE = (195.0, 134.0, 60.0, 62.0)
Box = tuple[float, float, float, float]


def grey(image: Pixels) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# --- Wilson --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (1, 10, 0.0179, 0.4042),
        (95, 100, 0.8882, 0.9785),
    ],
)
def test_wilson_known_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson(k, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_without_trials_says_nothing() -> None:
    assert wilson(0, 0) == (0.0, 1.0)


# --- the size-sweep renderer ---------------------------------------------------------------------


def test_face_is_rendered_at_the_asked_size_from_the_downscaled_photo(
    astronaut: np.ndarray,
) -> None:
    r = render_face(astronaut, ASTRONAUT_FACE, 16, key="astronaut.png")
    assert r is not None
    assert r.pixels.shape == (CANVAS[1], CANVAS[0], 3) and r.pixels.dtype == np.uint8
    bx, by, bw, bh = r.box
    assert 16 <= min(bw, bh) < 17
    assert 0 <= bx and bx + bw <= CANVAS[0] and 0 <= by and by + bh <= CANVAS[1]

    x0, y0, x1, y1 = round(bx), round(by), round(bx + bw), round(by + bh)
    there = grey(r.pixels[y0:y1, x0:x1])

    def shrunk(image: np.ndarray, box: Box) -> np.ndarray:
        x, y, w, h = (round(v) for v in box)
        crop = image[y : y + h, x : x + w]
        return grey(cv2.resize(crop, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA))

    assert corr(there, shrunk(astronaut, ASTRONAUT_FACE)) > 0.9
    # The same check fails on what is not this face: another part of the photo.
    assert corr(there, shrunk(astronaut, (300.0, 250.0, 94.0, 122.0))) < 0.5


def test_the_face_keeps_its_surroundings(astronaut: np.ndarray) -> None:
    """The whole photo is shrunk and pasted, not just the face box."""
    r = render_face(astronaut, ASTRONAUT_FACE, 24, key="astronaut.png")
    assert r is not None
    scale = r.box[2] / ASTRONAUT_FACE[2]
    ox, oy = r.box[0] - ASTRONAUT_FACE[0] * scale, r.box[1] - ASTRONAUT_FACE[1] * scale
    side = round(512 * scale)
    pasted = r.pixels[round(oy) : round(oy) + side, round(ox) : round(ox) + side]
    whole = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
    assert corr(grey(pasted), grey(whole)) > 0.95


def test_rendered_size_is_never_below_the_asked_size() -> None:
    """Faces under 24 px are judged on the whole ellipse: a "24 px" face must not be 23.9."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(100, 900, size=2))
        w, h = float(rng.uniform(40, width * 0.9)), float(rng.uniform(40, height * 0.9))
        size = int(rng.choice([12, 16, 24, 32]))
        image = np.zeros((height, width, 3), np.uint8)
        r = render_face(image, (0.0, 0.0, w, h), size, key="k")
        assert r is not None
        assert size <= min(r.box[2], r.box[3]) < size + 1, (width, height, w, h, size)


def test_position_is_fixed_by_the_file_name(astronaut: np.ndarray) -> None:
    first = render_face(astronaut, ASTRONAUT_FACE, 16, key="images/a/one.jpg")
    again = render_face(astronaut, ASTRONAUT_FACE, 16, key="images/a/one.jpg")
    other = render_face(astronaut, ASTRONAUT_FACE, 16, key="images/a/two.jpg")
    assert first is not None and again is not None and other is not None
    assert first.box == again.box
    assert np.array_equal(first.pixels, again.pixels)
    assert first.box[:2] != other.box[:2]
    assert placement("images/a/one.jpg") == placement("images/a/one.jpg")
    assert all(0.0 <= v < 1.0 for v in placement("images/a/one.jpg"))


def test_the_background_is_shared_and_holds_no_face() -> None:
    from edge.detect.centerface import CenterFace

    plain = background(*CANVAS)
    assert plain is background(*CANVAS) and not plain.flags.writeable
    assert 1.0 < float(grey(plain).std()) < 20.0  # mildly textured, not flat, not busy
    # Not even at the lowest threshold Veil allows: no mask on the background can cover a face.
    assert len(CenterFace(max_side=2048, threshold=0.05).detect(plain.copy())) == 0


def test_faces_are_only_shrunk(astronaut: np.ndarray) -> None:
    assert render_face(astronaut, ASTRONAUT_FACE, 94, key="a") is None
    assert render_face(astronaut, ASTRONAUT_FACE, 93, key="a") is not None


def test_conditions_are_seeded_and_change_the_picture(astronaut: np.ndarray) -> None:
    r = render_face(astronaut, ASTRONAUT_FACE, 16, key="a.png")
    assert r is not None
    assert apply_condition(r, "clear", key="a") is r
    dark = apply_condition(r, "low_light", key="a@16")
    assert np.array_equal(dark.pixels, apply_condition(r, "low_light", key="a@16").pixels)
    assert not np.array_equal(dark.pixels, apply_condition(r, "low_light", key="b@16").pixels)
    assert grey(dark.pixels).mean() < 0.5 * grey(r.pixels).mean()
    soft = apply_condition(r, "blur", key="a")
    assert soft.box == r.box
    assert np.abs(np.diff(grey(soft.pixels))).mean() < np.abs(np.diff(grey(r.pixels))).mean()
    with pytest.raises(ValueError, match="unknown condition"):
        apply_condition(r, "fog", key="a")


# --- grouping ------------------------------------------------------------------------------------


def _outcomes(group: str, n: int, protected: int, source: str = "s") -> list[Outcome]:
    labels = {"race_group": group, "gender": "F", "age_group": "20-29"}
    return [Outcome(f"{group}{i}", source, labels, i < protected) for i in range(n)]


def test_worst_group_ignores_cells_too_small_to_rank() -> None:
    outcomes = _outcomes("A", 25, 25) + _outcomes("B", 30, 18) + _outcomes("C", 5, 0)
    (source,) = summarise(outcomes)["sources"]
    race = {c["group"]: c for c in source["groups"]["race_group"]}
    assert [(c["n"], c["protected"]) for c in race.values()] == [(25, 25), (30, 18), (5, 0)]
    assert race["C"]["rankable"] is False and MIN_RANK_N > 5
    spread = source["spread"]["race_group"]
    assert spread["worst"]["group"] == "B" and spread["best"]["group"] == "A"
    assert spread["gap"] == pytest.approx(0.4) and spread["overlap"] is False
    assert source["worst"]["attribute"] == "race_group" and source["worst"]["group"] == "B"
    assert source["spread"]["gender"] is None  # one group only
    # A missing label is its own row, never ranked.
    tercile = source["groups"]["skin_tone_ita_tercile_in_source"]
    assert [(c["group"], c["n"], c["rankable"]) for c in tercile] == [("(none)", 60, False)]


def test_groups_are_counted_within_each_source_and_pooled() -> None:
    outcomes = _outcomes("A", 3, 3, "s1") + _outcomes("B", 2, 1, "s1") + _outcomes("A", 4, 0, "s2")
    summary = summarise(outcomes)
    by_source = {s["source"]: s for s in summary["sources"]}
    assert {g["group"]: g["n"] for g in by_source["s1"]["groups"]["race_group"]} == {"A": 3, "B": 2}
    assert {g["group"]: g["n"] for g in by_source["s2"]["groups"]["race_group"]} == {"A": 4}
    pooled = {g["group"]: g for g in summary["pooled"]["groups"]["race_group"]}
    assert (pooled["A"]["n"], pooled["A"]["protected"]) == (7, 3)
    assert summary["pooled"]["overall"]["n"] == 9
    assert set(summary["pooled"]["groups"]) == {"race_group", "gender"}


# --- a tiny labelled set of real photos ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ImageItem]]:
    """Astronaut and cameraman, each also mirrored, in two made-up sources with made-up labels;
    one more picture without labels, which must not count."""
    import skimage.data

    root = tmp_path_factory.mktemp("groups")
    (root / "images").mkdir()
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR)
    records: list[dict[str, Any]] = []
    for name, image, box, source in [
        ("astronaut", astronaut, ASTRONAUT_FACE, "s1"),
        ("camera", camera, CAMERA_FACE, "s2"),
    ]:
        mirrored = (image.shape[1] - box[0] - box[2], box[1], box[2], box[3])
        for suffix, pixels, face, group in [
            ("", image, box, "A"),
            ("_m", image[:, ::-1], mirrored, "B"),
        ]:
            file = f"images/{name}{suffix}.png"
            cv2.imwrite(str(root / file), np.ascontiguousarray(pixels))
            labels = {"race_group": group, "gender": "F" if source == "s1" else "M"}
            labels |= {"age_group": "20-29", "skin_tone_ita_tercile_in_source": None}
            records.append(
                {"file": file, "width": 512, "height": 512, "source": source, "subset": source,
                 "faces": [list(face)], "labels": labels}
            )  # fmt: skip
    records.append({**records[0], "file": "images/astronaut.png", "labels": None})
    (root / "annotations.json").write_text(json.dumps({"images": records}), encoding="utf-8")
    return root, load_evalset(root).images


@pytest.fixture(scope="module")
def protect() -> Callable[[Pixels], Pixels]:
    cfg = Config()
    detector = build_detector(cfg.detector, still=True)
    redactor = Redactor(cfg.redact)

    def run(pixels: Pixels) -> Pixels:
        return redactor.redact(RawFrame(pixels, index=0), detector.detect(pixels)).pixels

    return run


SIZES = (16, 24, 32)


@pytest.fixture(scope="module")
def real_report(
    tiny_set: tuple[Path, list[ImageItem]], protect: Callable[[Pixels], Pixels]
) -> dict[str, Any]:
    root, items = tiny_set
    return evaluate_groups(root, items, protect, sizes=SIZES, conditions=("clear", "blur"))


def _all_cells(summary: dict[str, Any]) -> list[dict[str, Any]]:
    views = [*summary["sources"], summary["pooled"]]
    return [v["overall"] for v in views] + [
        c for v in views for cells in v["groups"].values() for c in cells
    ]


def test_real_pipeline_protects_every_face(real_report: dict[str, Any]) -> None:
    assert real_report["labelled"] == 4 and real_report["unlabelled_skipped"] == 1
    native = real_report["native"]
    assert native["pooled"]["overall"] == pytest.approx(
        {"group": "all", "n": 4, "protected": 4, "recall": 1.0, "low": wilson(4, 4)[0],
         "high": 1.0, "rankable": False}
    )  # fmt: skip
    runs = real_report["sweep"]["runs"]
    assert [(r["condition"], r["size"]) for r in runs] == [
        (c, s) for c in ("clear", "blur") for s in SIZES
    ]
    for run in runs:
        assert run["pooled"]["overall"]["n"] == 4, run["size"]
        assert run["pooled"]["overall"]["recall"] == 1.0, (run["condition"], run["size"])
    assert native["misses"] == [] and real_report["sweep"]["misses"] == []


def test_group_counts_of_the_tiny_set(real_report: dict[str, Any]) -> None:
    native = real_report["native"]
    assert [s["source"] for s in native["sources"]] == ["s1", "s2"]
    for source in native["sources"]:
        assert source["overall"]["n"] == 2
        assert set(source["groups"]) == set(IN_SOURCE)
        assert {c["group"]: c["n"] for c in source["groups"]["race_group"]} == {"A": 1, "B": 1}
        assert [c["group"] for c in source["groups"]["skin_tone_ita_tercile_in_source"]] == [
            "(none)"
        ]
    gender = {c["group"]: c["n"] for c in native["pooled"]["groups"]["gender"]}
    assert gender == {"F": 2, "M": 2}


def test_a_pipeline_that_redacts_nothing_scores_zero_everywhere(
    tiny_set: tuple[Path, list[ImageItem]],
) -> None:
    root, items = tiny_set
    report = evaluate_groups(root, items, lambda pixels: pixels, sizes=SIZES)
    summaries = [report["native"], *report["sweep"]["runs"]]
    cells = [c for s in summaries for c in _all_cells(s)]
    assert cells and all(c["recall"] == 0.0 and c["protected"] == 0 for c in cells)
    assert len(report["native"]["misses"]) == 4
    assert len(report["sweep"]["misses"]) == 4 * len(SIZES)
    assert all(m["kept"] == pytest.approx(1.0) for m in report["sweep"]["misses"])
    below = report["sweep"]["below_target"]
    assert {(b["size"], b["where"]) for b in below if b["attribute"] == "all"} == {
        (16, "s1"), (16, "s2"), (16, "pooled"), (24, "s1"), (24, "s2"), (24, "pooled")
    }  # fmt: skip


def test_report_is_json_and_renders_in_100_columns(real_report: dict[str, Any]) -> None:
    text = json.dumps(real_report)
    again = json.loads(text)
    rendered = render_groups(real_report)
    assert render_groups(again) == rendered
    assert max(len(line) for line in rendered.splitlines()) <= 100
    assert "NATIVE" in rendered and "SIZE SWEEP" in rendered and "condition blur" in rendered
    assert "~" in rendered  # every cell here is too small to rank, and says so


def test_sweep_series_lines(real_report: dict[str, Any]) -> None:
    series = dict(sweep_series(real_report))
    assert series["all"] == [(16.0, 1.0), (24.0, 1.0), (32.0, 1.0)]
    assert set(series) == {"all", "A", "B", "all (blur)"}
    assert sweep_series({**real_report, "sweep": None}) == []


def test_bad_sweep_arguments_are_refused(tiny_set: tuple[Path, list[ImageItem]]) -> None:
    root, items = tiny_set
    with pytest.raises(ValueError, match="fog"):
        evaluate_groups(root, items, lambda p: p, conditions=("fog",))
    with pytest.raises(ValueError, match="sizes"):
        evaluate_groups(root, items, lambda p: p, sizes=(0,))


def test_without_sweep_only_the_native_pass_runs(tiny_set: tuple[Path, list[ImageItem]]) -> None:
    root, items = tiny_set
    calls: list[Pixels] = []

    def count(pixels: Pixels) -> Pixels:
        calls.append(pixels)
        return pixels

    report = evaluate_groups(root, items, count, sweep=False)
    assert report["sweep"] is None and len(calls) == 4


# --- the shared groups set -----------------------------------------------------------------------


@pytest.mark.evalset
@pytest.mark.skipif(
    not (GROUPS_DEV / "annotations.json").is_file(),
    reason=f"groups evaluation set not present at {GROUPS_DEV}",
)
def test_native_pass_on_a_stratified_slice(protect: Callable[[Pixels], Pixels]) -> None:
    items = [i for i in load_evalset(GROUPS_DEV).images if i.labels is not None]
    assert items

    def stratum(item: ImageItem) -> tuple[str, str, str]:
        assert item.labels is not None
        return item.source, str(item.labels.get("race_group")), str(item.labels.get("gender"))

    # Every 16th image in source x race x gender order: about 40, every source in.
    ordered = sorted(items, key=lambda i: (*stratum(i), i.file))
    picked = ordered[::16]
    report = evaluate_groups(GROUPS_DEV, picked, protect, sweep=False)

    assert report["labelled"] == len(picked) and report["sweep"] is None
    sources = {s["source"]: s for s in report["native"]["sources"]}
    assert set(sources) == {i.source for i in picked} and len(sources) >= 3
    for name, source in sources.items():
        n = source["overall"]["n"]
        assert n == sum(1 for i in picked if i.source == name)
        for attribute, cells in source["groups"].items():
            assert sum(c["n"] for c in cells) == n, (name, attribute)
    cells = _all_cells(report["native"])
    assert all(c["low"] <= c["recall"] <= c["high"] for c in cells)
    pooled = report["native"]["pooled"]["overall"]
    assert pooled["n"] == len(picked)
    # Faces at 100 px and more, as stored: docs/measurements.md has every source at 97 % or more
    # even re-rendered at 24 px.
    assert pooled["recall"] >= 0.9, report["native"]["misses"]
    assert max(len(line) for line in render_groups(report).splitlines()) <= 100
