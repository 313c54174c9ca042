"""`veil eval SET --audit-report report.html`: the equal-protection audit as one page a civic
group can publish. It is self-contained (no script, font, image or style from anywhere else; the
page's content policy forbids fetching any), it prints, and every figure in it comes from the
`veil eval` summary it is made from.

Top to bottom: a plain-language summary; what was run (Veil, the profile's and the models'
SHA-256, the set, the conditions' recipes); per source, recall per group with 95 % intervals as
stored and at each size under each condition, the worst group of each cell named and gaps wider
than the intervals flagged; the data's caveats.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from edge.evaluate.equal_protection_live import live_section
from edge.evaluate.equal_protection_svg import recall_chart
from edge.evaluate.groups import NO_LABEL, targets_for

NAMES = {
    "race_group": "Perceived race (harmonised across sources)",
    "gender": "Gender",
    "age_group": "Age",
    "skin_tone_ita_tercile_in_source": "Estimated skin tone (ITA tercile within the source)",
}
CAVEATS = (
    "Race and gender labels are <b>perceived</b>: given by annotators who looked at the photo "
    "(FairFace, UTKFace), except London's, which the subjects reported themselves. The race "
    "classes differ between sources and are merged into coarse groups.",
    "Skin tone is <b>estimated</b> by a script (the ITA angle of two cheek patches), with no "
    "colour calibration. It moves with lighting and white balance as much as with skin, so it "
    "is compared only within one source and read as exploratory.",
    "<b>Crop geometry differs by source</b>: FairFace faces sit in a padded photo with real "
    "background, London's in studio portraits, UTKFace's are tight chips that fill the frame. "
    "That is why sources are never pooled for a headline figure.",
    "FairFace and UTKFace faces were found by a face detector before they were cropped, so "
    "faces that detector missed are absent: the sets lean towards faces that are easy to find.",
    "Groups are small (tens to a few hundred faces). An interval shows how far chance alone "
    "could move a rate; a gap is flagged only when the two intervals do not overlap, and a "
    "group of fewer than {min_n} faces is shown but never named worst.",
    "The small, dim and soft faces are re-rendered from the photos by the recipes above; a real "
    "camera at dusk adds motion, compression and its own noise.",
    "Veil never infers anyone's race, gender, age or skin tone: the groups exist only in this "
    "set's labels, and nothing in the detector or the redaction depends on them.",
)
_STYLE = (
    "body{font-family:sans-serif;max-width:72em;margin:1em auto;padding:0 1em;color:#111}"
    "h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}"
    ".summary{background:#f4f6fa;border-left:4px solid #1f5fa8;padding:.4em 1em}"
    "table{border-collapse:collapse;margin:.4em 0 1em}td,th{padding:.15em .6em;"
    "border-bottom:1px solid #eee;text-align:right;white-space:nowrap}"
    "td:first-child,th:first-child{text-align:left}"
    ".worst{font-weight:bold}.below{background:#fde8e8}.flag{color:#b00;font-weight:bold}"
    ".small{color:#777}code{font-size:.9em;word-break:break-all}svg{max-width:40em;width:100%}"
    ".tables{display:flex;flex-wrap:wrap;gap:0 2em;align-items:flex-start}"
    "caption{text-align:left;font-weight:bold;padding:.3em 0}"
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _ci(cell: Mapping[str, Any]) -> str:
    return f"[{100 * cell['low']:.0f}–{100 * cell['high']:.0f}]"


def _source_views(groups: Mapping[str, Any]) -> list[tuple[str, str, int | None, Any]]:
    """(source, condition, size, view) for every cell of the audit, native first."""
    out: list[tuple[str, str, int | None, Any]] = [
        (s["source"], "as stored", None, s) for s in groups["native"]["sources"]
    ]
    for run in (groups.get("sweep") or {}).get("runs", []):
        out += [(s["source"], run["condition"], run["size"], s) for s in run["sources"]]
    return out


def _flags(groups: Mapping[str, Any]) -> list[str]:
    out = []
    for source, condition, size, view in _source_views(groups):
        for attribute, spread in view["spread"].items():
            if spread is not None and not spread["overlap"]:
                where = condition if size is None else f"{condition}, {size} px"
                w, b = spread["worst"], spread["best"]
                out.append(
                    f"{escape(source)} ({where}), {NAMES.get(attribute, attribute).lower()}: "
                    f"{escape(w['group'])} {_pct(w['recall'])} {_ci(w)} against "
                    f"{escape(b['group'])} {_pct(b['recall'])} {_ci(b)}"
                )
    return out


def _summary(summary: Mapping[str, Any]) -> list[str]:
    groups = summary["groups"]
    native = groups["native"]["pooled"]["overall"]
    sources = [s["source"] for s in groups["native"]["sources"]]
    sweep = groups.get("sweep")
    out = [
        '<section class="summary" id="summary"><h2>Summary</h2>',
        f"<p>Veil {escape(str(summary['veil_version']))} (profile "
        f"<code>{summary['config_sha256'][:12]}</code>) was run on {groups['labelled']} labelled "
        f"photos of faces from {len(sources)} source(s): {escape(', '.join(sources))}. A face "
        "counts as protected when Veil's redaction leaves none of its detail readable.</p>",
        f"<p>As stored, <b>{native['protected']} of {native['n']}</b> faces were protected "
        f"({_pct(native['recall'])}).</p>",
    ]
    if sweep:
        conditions = ", ".join(sweep["conditions"])
        sizes = ", ".join(f"{s}" for s in sweep["sizes"])
        cells = [
            (src, cond, size, attribute, cell)
            for src, cond, size, view in _source_views(groups)
            if size is not None
            for attribute, cell_list in view["groups"].items()
            for cell in cell_list
            if cell["rankable"]
        ]
        out.append(
            f"<p>Each face was also made small ({sizes} px) inside a camera-sized picture, "
            f"under: {escape(conditions)}.</p>"
        )
        if cells:
            src, cond, size, attribute, c = min(cells, key=lambda t: (t[4]["recall"], -t[4]["n"]))
            out.append(
                f"<p>The least-protected group anywhere was <b>{escape(c['group'])}</b> "
                f"({NAMES.get(attribute, attribute).lower()}) in {escape(src)}, "
                f"{escape(cond)} at {size} px: <b>{_pct(c['recall'])}</b> {_ci(c)}, "
                f"{c['protected']} of {c['n']} faces.</p>"
            )
        below = [b for b in sweep["below_target"] if b["rankable"] and b["where"] != "pooled"]
        out.append(
            f"<p><b>{len(below)}</b> figure(s) of a group in a source fell below their target "
            "(marked red below).</p>"
            if below
            else "<p>Every group large enough to rank met its target.</p>"
        )
        out += _glance(groups)
    flags = _flags(groups)
    if flags:
        out.append(
            f"<p class='flag'>{len(flags)} gap(s) between groups are wider than chance explains "
            "(their 95 % intervals do not overlap):</p><ul>"
            + "".join(f"<li>{f}</li>" for f in flags[:8])
            + (f"<li>and {len(flags) - 8} more, flagged below</li>" if len(flags) > 8 else "")
            + "</ul>"
        )
    else:
        out.append("<p>No gap between groups is wider than the 95 % intervals in any cell.</p>")
    out.append("</section>")
    return out


def _glance(groups: Mapping[str, Any]) -> list[str]:
    """The worst group of every cell, per source, condition and size, in one table."""
    sweep = groups["sweep"]
    sizes = sweep["sizes"]
    head = "".join(f"<th>{s} px</th>" for s in sizes)
    out = [
        "<table><caption>Worst group of each cell (any attribute), per source</caption>",
        f"<tr><th>source</th><th>condition</th>{head}</tr>",
    ]
    for source in [s["source"] for s in groups["native"]["sources"]]:
        for condition in sweep["conditions"]:
            tds = []
            for size in sizes:
                run = next(
                    r for r in sweep["runs"] if (r["condition"], r["size"]) == (condition, size)
                )
                view: Mapping[str, Any] = next(
                    (v for v in run["sources"] if v["source"] == source), {}
                )
                worst = view.get("worst")
                if not worst:
                    tds.append('<td class="small">too few to rank</td>')
                    continue
                if worst["recall"] == 1.0:
                    tds.append("<td>every group 100 %</td>")
                    continue
                target = targets_for(condition).get(size)
                css = "below" if target is not None and worst["recall"] < target else ""
                spread = view["spread"][worst["attribute"]]
                flag = "" if spread is None or spread["overlap"] else ' <span class="flag">⚑</span>'
                tds.append(
                    f'<td class="{css}">{escape(worst["group"])} {_pct(worst["recall"])} '
                    f'<span class="small">{_ci(worst)}</span>{flag}</td>'
                )
            out.append(
                f"<tr><td>{escape(source)}</td><td>{escape(condition)}</td>{''.join(tds)}</tr>"
            )
    return [*out, "</table>"]


def _setup(summary: Mapping[str, Any]) -> list[str]:
    groups = summary["groups"]
    sweep = groups.get("sweep")
    models = "".join(
        f"<li>{escape(m['name'])}: <code>{m['sha256']}</code></li>" for m in summary["models"]
    )
    out = [
        '<section id="setup"><h2>What was run</h2><ul>',
        f"<li>Veil {escape(str(summary['veil_version']))}</li>",
        f"<li>Profile SHA-256: <code>{summary['config_sha256']}</code></li>",
        f"<li>Models (SHA-256):<ul>{models}</ul></li>",
        f"<li>Set: <code>{escape(str(summary['set']))}</code>"
        + (f", first {summary['limit']} images" if summary.get("limit") else "")
        + "</li>",
    ]
    if sweep:
        w, h = sweep["canvas"]
        out += [
            f"<li>Small faces: the whole photo shrunk (area averaging) until the labelled box's "
            f"shorter side is the size, pasted on a {w}x{h} canvas ({escape(sweep['background'])}"
            f"; {escape(sweep['placement'])}).</li>",
            "<li>Conditions, applied to the whole canvas:<ul>",
            *(
                f"<li><b>{escape(name)}</b>: {escape(recipe)}; targets: "
                + ", ".join(f"{s} px ≥ {100 * r:g} %" for s, r in targets_for(name).items())
                + "</li>"
                for name, recipe in sweep["conditions"].items()
            ),
            "</ul></li>",
        ]
    return [*out, "</ul></section>"]


def _table(
    attribute: str, columns: Sequence[tuple[str, Any, float | None]], min_n: int
) -> list[str]:
    """Groups (rows) by columns (a label, the view, the target); the worst named per column."""
    order = [c["group"] for c in columns[0][1]["groups"][attribute]]
    head = "".join(f"<th>{escape(label)}</th>" for label, _, _ in columns)
    out = [f"<table><caption>{escape(NAMES.get(attribute, attribute))}</caption>"]
    out.append(f"<tr><th>group</th><th>n</th>{head}</tr>")
    for group in order:
        tds, ns = [], set()
        for _, view, target in columns:
            spread = view["spread"].get(attribute)
            cell = next((c for c in view["groups"][attribute] if c["group"] == group), None)
            if cell is None or not cell["n"]:
                tds.append("<td>-</td>")
                continue
            ns.add(cell["n"])
            worst = spread is not None and spread["gap"] > 0 and spread["worst"]["group"] == group
            below = target is not None and cell["recall"] < target
            css = " ".join(n for n, on in (("worst", worst), ("below", below)) if on)
            tds.append(
                f'<td class="{css}">{_pct(cell["recall"])} <span class="small">{_ci(cell)}'
                "</span></td>"
            )
        n = "-" if not ns else "/".join(str(v) for v in sorted(ns))
        small = " small" if min(ns, default=0) < min_n else ""
        out.append(f'<tr class="{small.strip()}"><td>{escape(group)}</td><td>{n}</td>')
        out.append("".join(tds) + "</tr>")
    worst_row, gap_row = [], []
    for _, view, _ in columns:
        spread = view["spread"].get(attribute)
        if spread is None:
            worst_row.append('<td class="small">too few to rank</td>')
            gap_row.append("<td>-</td>")
            continue
        if spread["gap"] == 0:
            worst_row.append('<td class="small">none: all equal</td>')
        else:
            worst_row.append(f'<td class="worst">{escape(spread["worst"]["group"])}</td>')
        flag = "" if spread["overlap"] else ' <span class="flag">⚑ beyond intervals</span>'
        gap_row.append(f"<td>{100 * spread['gap']:.1f} pts{flag}</td>")
    out.append("<tr><td>worst group</td><td></td>" + "".join(worst_row) + "</tr>")
    out.append("<tr><td>gap, best − worst</td><td></td>" + "".join(gap_row) + "</tr>")
    return [*out, "</table>"]


def _labelled(view: Mapping[str, Any]) -> list[str]:
    """The attributes this source labels at all (FairFace has no per-year age, say)."""
    return [a for a, cells in view["groups"].items() if any(c["group"] != NO_LABEL for c in cells)]


def _find(view: Mapping[str, Any], attribute: str, group: str) -> Mapping[str, Any]:
    cells = view["groups"][attribute]
    return next((c for c in cells if c["group"] == group), {"n": 0})


def _source_section(groups: Mapping[str, Any], source: str) -> list[str]:
    min_n = groups["min_rank_n"]
    native = next(s for s in groups["native"]["sources"] if s["source"] == source)
    out = [f'<section class="source"><h2>{escape(source)}</h2>', "<h3>As stored</h3>"]
    out.append('<div class="tables">')
    for attribute in _labelled(native):
        out += _table(attribute, [("recall [95 % CI]", native, None)], min_n)
    out.append("</div>")
    sweep = groups.get("sweep") or {}
    for condition in sweep.get("conditions", {}):
        runs = [r for r in sweep["runs"] if r["condition"] == condition]
        views = [(r["size"], v) for r in runs for v in r["sources"] if v["source"] == source and v]
        if not views:
            continue
        targets = targets_for(condition)
        out.append(f"<h3>Small faces, {escape(condition)}</h3>")
        lines = [
            (group, [(size, _find(v, "race_group", group)) for size, v in views])
            for group in (c["group"] for c in views[0][1]["groups"].get("race_group", []))
            if group != "(none)"
        ]
        title = f"{source}, {condition}: recall by size and perceived race, 95 % intervals"
        out.append(recall_chart(lines, [s for s, _ in views], title, targets))
        columns = [(f"{size} px", v, targets.get(size)) for size, v in views]
        out.append('<div class="tables">')
        for attribute in _labelled(views[0][1]):
            out += _table(attribute, columns, min_n)
        out.append("</div>")
    return [*out, "</section>"]


def render_audit(summary: Mapping[str, Any], live: Mapping[str, Any] | None = None) -> str:
    """The page, from a `veil eval` summary that holds a group audit (`summary["groups"]`);
    with `live`, a labelled clip's recording scored by group, beside the stills."""
    groups = summary.get("groups")
    if not groups or "native" not in groups:
        raise ValueError("the set has no labelled faces: there is no group audit to report")
    title = f"Veil equal-protection audit: {summary['set']}"
    digest = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    policy = f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'"
    sources = [s["source"] for s in groups["native"]["sources"]]
    caveats = "".join(f"<li>{c.format(min_n=groups['min_rank_n'])}</li>" for c in CAVEATS)
    body = [
        *_summary(summary),
        *_setup(summary),
        '<p class="small">Bold: the worst group of a column (groups of at least '
        f"{groups['min_rank_n']} faces). Red: below the target. ⚑: the worst and best groups' "
        "95 % Wilson intervals do not overlap.</p>",
        *(line for source in sources for line in _source_section(groups, source)),
        *(live_section(live) if live is not None else []),
        f'<section id="caveats"><h2>Caveats</h2><ul>{caveats}</ul></section>',
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            *body,
            "</body></html>",
            "",
        ]
    )
