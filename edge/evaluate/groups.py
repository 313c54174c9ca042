"""Equal protection: recall of the one labelled face per image, per demographic group.

A face counts as protected when `is_protected(before, after, face_box)` holds, `after` being what
Veil's pipeline made of the picture. Two passes:
- native: every image as stored;
- size sweep: every face re-rendered small inside a camera-sized frame (`edge.evaluate.sweep`),
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
from edge.evaluate.sweep import (
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
TARGETS: dict[int, float] = {16: 0.97, 24: 0.99}  # face size in px -> least recall of any group
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
    target = TARGETS.get(size)
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


def _read(path: Path) -> Pixels:
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
    condition in `conditions` (see `edge.evaluate.sweep.CONDITIONS`). JSON-serialisable."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or any(int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"bad sweep: sizes {list(sizes)}, unknown conditions {unknown}")
    labelled = [(item, item.labels) for item in items if item.labels is not None and item.faces]
    native_judge, sweep_judge = _Judge(protect), _Judge(protect)
    native: list[Outcome] = []
    swept: dict[tuple[str, int], list[Outcome]] = {(c, s): [] for c in conditions for s in sizes}
    skipped = dict.fromkeys(sizes, 0)
    for item, labels in labelled:
        image, box = _read(root / item.file), item.faces[0]
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
        "targets": [{"size": s, "recall": r} for s, r in TARGETS.items()],
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


# --- text ---------------------------------------------------------------------------------------

_SHORT = {"race_group": "race", "age_group": "age", "skin_tone_ita_tercile_in_source": "ITA"}
_LABEL = 29  # width of the group column: "    Middle Eastern/West Asian"
_PER_TABLE = 4  # sizes side by side, so that a sweep table fits in 100 columns
Cells = dict[tuple[str, str], Mapping[str, Any]]


def _pct(x: float | None) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def _ci(cell: Mapping[str, Any], digits: int) -> str:
    return f"[{100 * cell['low']:.{digits}f}-{100 * cell['high']:.{digits}f}]"


def _short(attribute: str) -> str:
    return _SHORT.get(attribute, attribute)


def _by_row(view: Mapping[str, Any]) -> Cells:
    """The view's cells keyed by (attribute, group), `all` first, in display order."""
    rows: Cells = {("all", "all"): view["overall"]}
    for attribute, cells in view["groups"].items():
        rows.update({(attribute, c["group"]): c for c in cells})
    return rows


def _table(views: Sequence[Cells], cell_text: Callable[[int, Any], str]) -> list[str]:
    """Rows of groups under attribute headings; `cell_text(column, cell)` fills each column."""
    out, heading = [], ""
    for (attribute, group), first in views[0].items():
        if attribute not in (heading, "all"):
            heading = attribute
            out.append(f"  {attribute}")
        label = "  all" if attribute == "all" else f"    {group}"
        small = "~" if attribute != "all" and not first["rankable"] else " "
        cells = [v.get((attribute, group)) for v in views]
        ns = sorted({c["n"] for c in cells if c is not None})
        n = "0" if not ns else str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
        text = " ".join(cell_text(i, c) for i, c in enumerate(cells))
        out.append(f"{label:<{_LABEL}.{_LABEL}}{n:>5}{small} {text}".rstrip())
    return out


def _gaps(view: Mapping[str, Any], where: str = "") -> str:
    spread = [(a, x) for a, x in view["spread"].items() if x is not None]
    parts = [f"{_short(a)} {100 * x['gap']:.1f}{'' if x['overlap'] else '*'}" for a, x in spread]
    return f"  gap{where}, pts (* = CIs apart): " + (", ".join(parts) or "n/a, too few")


def _worst(view: Mapping[str, Any], where: str) -> list[str]:
    w = view.get("worst")
    if not w:
        return []
    return [
        f"  worst{where}: {_short(w['attribute'])} = {w['group']}, "
        f"{_pct(w['recall']).strip()} % {_ci(w, 0)} (n={w['n']})"
    ]


def _native_text(native: Mapping[str, Any]) -> list[str]:
    def text(_: int, c: Mapping[str, Any]) -> str:
        return f"{c['protected']:>5} {_pct(c['recall'])} % {_ci(c, 1)}"

    out = ["NATIVE: each image as stored", ""]
    views = [(s["source"], s) for s in native["sources"]] + [("pooled", native["pooled"])]
    for name, view in views:
        out.append(f"{_title(name):<{_LABEL}}{'n':>5}  {'prot':>5} {'recall':>7} 95 % CI")
        out += [*_table([_by_row(view)], text), _gaps(view), *_worst(view, ""), ""]
    return out


def _sweep_text(sweep: Mapping[str, Any]) -> list[str]:
    w, h = sweep["canvas"]
    out = [
        f"SIZE SWEEP: photo shrunk (INTER_AREA) to make the face box's shorter side N px, "
        f"on {w}x{h}",
        "cell: recall % [95 % CI]; ! = below target"
        + "".join(f", {s} px >= {100 * r:g} %" for s, r in TARGETS.items()),
        "",
    ]
    for condition, note in sweep["conditions"].items():
        out += [f"condition {condition}: {note}", ""]
        runs = [r for r in sweep["runs"] if r["condition"] == condition]
        names = [s["source"] for s in runs[0]["sources"]] if runs else []
        for name in [*names, "pooled"]:
            present = [(r["size"], v) for r in runs if (v := _view_of(r, name)) is not None]
            for i in range(0, len(present), _PER_TABLE):
                out += _sweep_table(name, present[i : i + _PER_TABLE])
    ranked = [b for b in sweep["below_target"] if b["rankable"] or b["attribute"] == "all"]
    out.append(f"BELOW TARGET, rankable cells: {len(ranked)}")
    out += [
        f"  {b['condition']:<9} {b['size']:>2} px  {b['where']:<9} "
        + ("all faces" if b["attribute"] == "all" else f"{_short(b['attribute'])} = {b['group']}")
        + f": {_pct(b['recall']).strip()} % {_ci(b, 0)} (n={b['n']})"
        for b in ranked
    ]
    small = len(sweep["below_target"]) - len(ranked)
    out.append(f"  and {small} cells with n < {MIN_RANK_N} below target (too small to rank)")
    return out


def _sweep_table(name: str, views: Sequence[tuple[int, Mapping[str, Any]]]) -> list[str]:
    """One source's groups (rows) by sizes (columns), then the worst group at each size."""
    sizes = [size for size, _ in views]

    def text(col: int, c: Mapping[str, Any] | None) -> str:
        if c is None or not c["n"]:
            return f"{'-':^15}"
        flag = "!" if c["recall"] < TARGETS.get(sizes[col], 0.0) else " "
        return f"{_pct(c['recall']) + ' ' + _ci(c, 0):<14}{flag}"

    head = "".join(f"{f'{s} px':>15} " for s in sizes)
    out = [f"{_title(name):<{_LABEL}}{'n':>5}  {head}".rstrip()]
    out += _table([_by_row(v) for _, v in views], text)
    for size, view in views:
        out += [*_worst(view, f" at {size} px"), _gaps(view, f" at {size} px")]
    return [*out, ""]


def _title(name: str) -> str:
    return "pooled (source mix differs)" if name == "pooled" else name


def _view_of(run: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    if name == "pooled":
        return dict(run["pooled"])
    return next((s for s in run["sources"] if s["source"] == name), None)


def render_groups(report: Mapping[str, Any]) -> str:
    """The report as plain-text tables for a 100-column terminal."""
    out = [
        f"EQUAL PROTECTION (recall = labelled face protected): {report['labelled']} labelled "
        f"faces, {report['unlabelled_skipped']} unlabelled left out",
        f"every rate with its n and 95 % Wilson interval; ~ = n < {report['min_rank_n']}, "
        "too small to rank",
        "groups are compared within a source; pooled rows mix sources whose crops differ",
        "",
        *_native_text(report["native"]),
    ]
    if report.get("sweep"):
        out += _sweep_text(report["sweep"])
    return "\n".join(out).rstrip() + "\n"
