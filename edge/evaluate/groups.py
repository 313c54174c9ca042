"""Equal protection: recall of the one labelled face per image, per demographic group.

A face counts as protected when `is_protected(before, after, face_box)` holds, `after` being what
Veil's pipeline made of the picture. Two passes:
- native: every image as stored;
- size sweep: every face re-rendered small inside a camera-sized frame (`edge.evaluate.size_sweep`),
  optionally under low light or blur.

Groups are compared within one source (crop geometry, lighting and label conventions differ
between sources and would pass for group effects), with a pooled view of `race_group` and
`gender` as a secondary reading. Every rate carries its n and a 95 % Wilson interval; a cell with
fewer than MIN_RANK_N faces is shown but never named worst or best.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import MediaError
from edge.evaluate.evalset import ImageItem
from edge.evaluate.protection import is_protected, kept_detail
from edge.evaluate.size_sweep import (
    BACKGROUND,
    CANVAS,
    CONDITIONS,
    PLACEMENT,
    Box,
    apply_condition,
    render_face,
)
from edge.frames import Pixels

IN_SOURCE = ("race_group", "gender", "age_group", "skin_tone_ita_tercile_in_source")
POOLED = ("race_group", "gender")
MIN_RANK_N = 20
# The least recall any group may have: face size in px -> recall, per sweep condition. Clear light
# has its floors; the dim-and-soft dusk render has its own, stricter ones at small sizes, and the
# milder single conditions are held to the clear floors.
CLEAR_TARGETS: dict[int, float] = {16: 0.97, 24: 0.99}
TARGETS: dict[str, dict[int, float]] = {
    "low_light+blur": {12: 0.95, 16: 0.99},
    "shadow": {12: 0.95, 16: 0.99},
}


def targets_for(condition: str) -> dict[int, float]:
    return TARGETS.get(condition, CLEAR_TARGETS)


NO_LABEL = "(none)"  # e.g. no skin-tone proxy for black-and-white photos; never ranked
_Z95 = 1.959963984540054
_TERCILES = {"lighter": 0, "middle": 1, "darker": 2}

Protect = Callable[[Pixels], Pixels]


def wilson(k: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95 % by default); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p, z2n = k / n, z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Outcome:
    file: str
    source: str
    labels: Mapping[str, object]
    protected: bool


def _group_of(outcome: Outcome, attribute: str) -> str:
    value = outcome.labels.get(attribute)
    return NO_LABEL if value is None else str(value)


def _order(group: str) -> tuple[bool, int, float, str]:
    """Age bins by their first number, terciles light to dark, the rest by name; `(none)` last."""
    first = re.match(r"\d+", group)
    lead = float(first.group()) if first else math.inf
    return group == NO_LABEL, _TERCILES.get(group, -1), lead, group


def _cell(group: str, outcomes: Sequence[Outcome]) -> dict[str, Any]:
    n, k = len(outcomes), sum(o.protected for o in outcomes)
    low, high = wilson(k, n)
    rankable = n >= MIN_RANK_N and group != NO_LABEL
    recall = k / n if n else None
    return dict(group=group, n=n, protected=k, recall=recall, low=low, high=high, rankable=rankable)


def _cells(outcomes: Sequence[Outcome], attribute: str) -> list[dict[str, Any]]:
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(_group_of(o, attribute), []).append(o)
    return [_cell(g, groups[g]) for g in sorted(groups, key=_order)]


def _spread(cells: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Worst and best rankable group, the gap, and whether their intervals overlap."""
    ranked = [c for c in cells if c["rankable"]]
    if len(ranked) < 2:
        return None
    worst = min(ranked, key=lambda c: (c["recall"], -c["n"]))
    best = max(ranked, key=lambda c: (c["recall"], c["n"]))
    gap, overlap = best["recall"] - worst["recall"], worst["high"] >= best["low"]
    return {"worst": dict(worst), "best": dict(best), "gap": gap, "overlap": overlap}


def _view(outcomes: Sequence[Outcome], attributes: Sequence[str]) -> dict[str, Any]:
    groups = {a: _cells(outcomes, a) for a in attributes}
    spread = {a: _spread(cells) for a, cells in groups.items()}
    return {"overall": _cell("all", outcomes), "groups": groups, "spread": spread}


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Recall per group within each source (with the worst rankable group of all attributes),
    and pooled over sources."""
    by_source: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_source.setdefault(o.source, []).append(o)
    sources = []
    for source in sorted(by_source):
        view = _view(by_source[source], IN_SOURCE)
        ranked = [(a, c) for a, cells in view["groups"].items() for c in cells if c["rankable"]]
        worst = min(ranked, key=lambda ac: (ac[1]["recall"], -ac[1]["n"]), default=None)
        view["worst"] = None if worst is None else {"attribute": worst[0], **worst[1]}
        sources.append({"source": source, **view})
    return {"sources": sources, "pooled": _view(outcomes, POOLED)}


def _below_target(condition: str, size: int, summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    target = targets_for(condition).get(size)
    if target is None:
        return []
    views = [(s["source"], s) for s in summary["sources"]] + [("pooled", summary["pooled"])]
    return [
        {"condition": condition, "size": size, "target": target, "where": where, "attribute": a}
        | cell
        for where, view in views
        for a, cells in [("all", [view["overall"]]), *view["groups"].items()]
        for cell in cells
        if cell["n"] and cell["recall"] < target
    ]


def read_image(path: Path) -> Pixels:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"cannot read image {path}")
    return np.asarray(image, dtype=np.uint8)


class _Judge:
    """Runs `protect` on a picture and records the verdict; misses keep their kept detail."""

    def __init__(self, protect: Protect) -> None:
        self.protect = protect
        self.misses: list[dict[str, Any]] = []

    def __call__(
        self, item: ImageItem, labels: Mapping[str, object], before: Pixels, box: Box, **where: Any
    ) -> Outcome:
        # The redaction stage may draw into the array it is given; keep `before` untouched.
        after = self.protect(before.copy())
        protected = is_protected(before, after, box)
        source = item.source or item.subset  # the groups sets name both; others may name one
        if not protected:
            kept = round(kept_detail(before, after, box), 3)
            self.misses.append({"file": item.file, "source": source, **where, "kept": kept})
        return Outcome(item.file, source, labels, protected)


def evaluate_groups(
    root: Path,
    items: Sequence[ImageItem],
    protect: Protect,
    *,
    sizes: Sequence[int] = (12, 16, 24, 32),
    sweep: bool = True,
    conditions: Sequence[str] = ("clear",),
) -> dict[str, Any]:
    """Recall per group on `items` that carry `labels` (their first face is the labelled one),
    natively and, with `sweep`, with each face re-rendered at every size in `sizes` under every
    condition in `conditions` (see `edge.evaluate.size_sweep.CONDITIONS`). JSON-serialisable."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or any(int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"bad sweep: sizes {list(sizes)}, unknown conditions {unknown}")
    labelled = [(item, item.labels) for item in items if item.labels is not None and item.faces]
    native_judge, sweep_judge = _Judge(protect), _Judge(protect)
    native: list[Outcome] = []
    swept: dict[tuple[str, int], list[Outcome]] = {(c, s): [] for c in conditions for s in sizes}
    skipped = dict.fromkeys(sizes, 0)
    for item, labels in labelled:
        image, box = read_image(root / item.file), item.faces[0]
        native.append(native_judge(item, labels, image, box))
        for size in sizes if sweep else ():
            rendered = render_face(image, box, size, key=item.file)
            if rendered is None:
                skipped[size] += 1
                continue
            for condition in conditions:
                scene = apply_condition(rendered, condition, key=f"{item.file}@{size}")
                where = {"condition": condition, "size": size}
                swept[condition, size].append(
                    sweep_judge(item, labels, scene.pixels, scene.box, **where)
                )

    report: dict[str, Any] = {
        "format": "veil-groups/1",
        "labelled": len(labelled),
        "unlabelled_skipped": len(items) - len(labelled),
        "min_rank_n": MIN_RANK_N,
        "targets": [
            {"condition": c, "size": s, "recall": r}
            for c in conditions
            for s, r in targets_for(c).items()
        ],
        "native": {**summarise(native), "misses": native_judge.misses},
        "sweep": None,
    }
    if sweep:
        runs = [
            {"condition": c, "size": s, "skipped": skipped[s], **summarise(swept[c, s])}
            for c in conditions
            for s in sizes
        ]
        report["sweep"] = {
            "canvas": list(CANVAS),
            "background": BACKGROUND,
            "placement": PLACEMENT,
            "conditions": {c: CONDITIONS[c] for c in conditions},
            "sizes": list(sizes),
            "runs": runs,
            "below_target": [b for r in runs for b in _below_target(r["condition"], r["size"], r)],
            "misses": sweep_judge.misses,
        }
    return report


def sweep_series(report: Mapping[str, Any]) -> list[tuple[str, list[tuple[float, float]]]]:
    """Recall-vs-size lines for a chart: all faces under each condition, and each pooled
    `race_group` in clear conditions."""
    sweep = report.get("sweep")
    if not sweep:
        return []
    lines: dict[str, list[tuple[float, float]]] = {}
    for run in sweep["runs"]:
        pooled, condition = run["pooled"], run["condition"]
        suffix = "" if condition == "clear" else f" ({condition})"
        cells = [("all", pooled["overall"])]
        if condition == "clear":
            cells += [(c["group"], c) for c in pooled["groups"].get("race_group", [])]
        for label, cell in cells:
            if cell["n"]:
                lines.setdefault(label + suffix, []).append((float(run["size"]), cell["recall"]))
    return [(label, sorted(points)) for label, points in lines.items()]
