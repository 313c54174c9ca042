"""Recall against face size as one self-contained HTML page: an inline SVG chart (log size axis)
and the same numbers as a table. No script, no external font or style: it opens anywhere and
diffs line by line."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from edge.errors import UsageError

SUFFIXES = (".html", ".htm")
_PALETTE = (
    "#1f5fa8",
    "#c8511b",
    "#2e8b3e",
    "#8e3ba8",
    "#b0871a",
    "#1a9aa0",
    "#c23a6b",
    "#5a5a5a",
)
_W, _H = 960, 440
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 640, 24, 384  # the plot area; the legend sits to its right


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[float, float]]  # (face size px, recall 0..1)
    notes: list[str] = field(default_factory=list)  # hover text per point, optional


def check_chart_path(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"chart {path}: the chart is an HTML page, name it *.html")


def summary_series(summary: Mapping[str, Any]) -> list[Series]:
    """Images and video face-frames by size bin, each bin at the median size of its faces."""
    out = []
    for key, label in (("images", "images: faces"), ("videos", "videos: face-frames")):
        rows = [r for r in summary[key]["by_size"] if r["total"] and r["median_px"] is not None]
        if rows:
            out.append(
                Series(
                    label,
                    [(float(r["median_px"]), float(r["recall"])) for r in rows],
                    [f"{r['bin']} px: {r['protected']}/{r['total']}" for r in rows],
                )
            )
    return out


def _ticks(low: float, high: float) -> list[float]:
    candidates = [5.0 * 2**k for k in range(10)] + [12.0, 24.0]
    return sorted(t for t in candidates if low <= t <= high)


def y_floor(values: Sequence[float]) -> float:
    """The recall axis's lower end: a tenth below the lowest value, 0.9 at most."""
    lowest = min(values, default=1.0)
    return max(0.0, min(0.9, math.floor((lowest - 0.02) * 10) / 10))


def recall_grid(y_lo: float, left: float, right: float, py: Callable[[float], float]) -> list[str]:
    """Horizontal grid lines and their percent labels, from `y_lo` to 100 %."""
    out = []
    step = 0.1 if 1.0 - y_lo > 0.35 else 0.05
    for k in range(round((1.0 - y_lo) / step) + 1):
        y = py(y_lo + k * step)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{(y_lo + k * step) * 100:.0f} %</text>"
        )
    return out


def _svg(series: Sequence[Series]) -> list[str]:
    xs = [x for s in series for x, _ in s.points if x > 0]
    ys = [y for s in series for _, y in s.points]
    x_lo, x_hi = min(xs, default=10.0) / 1.25, max(xs, default=160.0) * 1.25
    y_lo = y_floor(ys)
    span = math.log(x_hi / x_lo)

    def px(x: float) -> float:
        return _LEFT + (_RIGHT - _LEFT) * math.log(x / x_lo) / span

    def py(y: float) -> float:
        return _BOTTOM - (_BOTTOM - _TOP) * (y - y_lo) / (1.0 - y_lo)

    height = max(_H, _TOP + 18 * len(series) + 16)  # room for every legend line
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" font-family="sans-serif" font-size="12">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_RIGHT - _LEFT}" height="{_BOTTOM - _TOP}" '
        'fill="none" stroke="#999"/>',
    ]
    for t in _ticks(x_lo, x_hi):
        x = px(t)
        out.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_BOTTOM}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{_BOTTOM + 16}" text-anchor="middle">{t:g}</text>')
    out += recall_grid(y_lo, _LEFT, _RIGHT, py)
    out.append(
        f'<text x="{(_LEFT + _RIGHT) / 2}" y="{_BOTTOM + 40}" text-anchor="middle">'
        "face size: shorter side of the annotated box (px, log scale)</text>"
    )
    out.append(
        f'<text transform="translate(16 {(_TOP + _BOTTOM) / 2}) rotate(-90)" '
        'text-anchor="middle">recall (faces protected)</text>'
    )
    for i, s in enumerate(series):
        colour = _PALETTE[i % len(_PALETTE)]
        dash = "" if i < len(_PALETTE) else ' stroke-dasharray="6 3"'
        points = sorted((x, y) for x, y in s.points if x > 0)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{path}"/>'
        )
        notes = s.notes if len(s.notes) == len(s.points) else [""] * len(s.points)
        for (x, y), note in zip(s.points, notes, strict=True):
            if x <= 0:
                continue
            tip = escape(f"{s.label}: {x:.0f} px, {y:.1%}" + (f" ({note})" if note else ""))
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}">'
                f"<title>{tip}</title></circle>"
            )
        ly = _TOP + 8 + 18 * i
        out.append(
            f'<line x1="{_RIGHT + 20}" y1="{ly}" x2="{_RIGHT + 44}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{_RIGHT + 50}" y="{ly + 4}">{escape(s.label[:44])}</text>')
    if not xs:
        out.append(f'<text x="{(_LEFT + _RIGHT) / 2}" y="{_TOP + 40}">no faces scored</text>')
    out.append("</svg>")
    return out


def render_chart(series: Sequence[Series], title: str) -> str:
    rows = [
        f"<tr><td>{escape(s.label)}</td><td>{x:.1f}</td><td>{y:.2%}</td>"
        f"<td>{escape(s.notes[i] if i < len(s.notes) else '')}</td></tr>"
        for s in series
        for i, (x, y) in enumerate(s.points)
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8"/>',
            f"<title>{escape(title)}</title>",
            "<style>body{font-family:sans-serif;margin:1em}"
            "td,th{padding:0 .8em;text-align:right}td:first-child{text-align:left}</style>",
            "</head>",
            "<body>",
            f"<h1>{escape(title)}</h1>",
            *_svg(series),
            "<table>",
            "<tr><th>series</th><th>face size (px)</th><th>recall</th><th>note</th></tr>",
            *rows,
            "</table>",
            "</body>",
            "</html>",
            "",
        ]
    )
