"""The group audit's report (`edge.evaluate.groups`) as plain-text tables for a terminal."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from edge.evaluate.groups import MIN_RANK_N, targets_for

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
        "cell: recall % [95 % CI]; ! = below the condition's target",
        "",
    ]
    for condition, note in sweep["conditions"].items():
        targets = ", ".join(f"{s} px >= {100 * r:g} %" for s, r in targets_for(condition).items())
        recipe = textwrap.wrap(f"condition {condition}: {note}", 100, subsequent_indent="  ")
        out += [*recipe, f"  targets: {targets}", ""]
        runs = [r for r in sweep["runs"] if r["condition"] == condition]
        names = [s["source"] for s in runs[0]["sources"]] if runs else []
        for name in [*names, "pooled"]:
            present = [(r["size"], v) for r in runs if (v := _view_of(r, name)) is not None]
            for i in range(0, len(present), _PER_TABLE):
                out += _sweep_table(name, present[i : i + _PER_TABLE], condition)
    ranked = [b for b in sweep["below_target"] if b["rankable"] or b["attribute"] == "all"]
    out.append(f"BELOW TARGET, rankable cells: {len(ranked)}")
    out += [
        f"  {b['condition']:<14} {b['size']:>2} px  {b['where']:<9} "
        + ("all faces" if b["attribute"] == "all" else f"{_short(b['attribute'])} = {b['group']}")
        + f": {_pct(b['recall']).strip()} % {_ci(b, 0)} (n={b['n']})"
        for b in ranked
    ]
    small = len(sweep["below_target"]) - len(ranked)
    out.append(f"  and {small} cells with n < {MIN_RANK_N} below target (too small to rank)")
    return out


def _sweep_table(
    name: str, views: Sequence[tuple[int, Mapping[str, Any]]], condition: str
) -> list[str]:
    """One source's groups (rows) by sizes (columns), then the worst group at each size."""
    sizes = [size for size, _ in views]
    targets = targets_for(condition)

    def text(col: int, c: Mapping[str, Any] | None) -> str:
        if c is None or not c["n"]:
            return f"{'-':^15}"
        flag = "!" if c["recall"] < targets.get(sizes[col], 0.0) else " "
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
