"""One small SVG chart for the equal-protection audit: recall by face size, one line per group,
each point with its 95 % interval as a whisker. Sizes are evenly spaced (a sweep has a handful),
and each line also differs by its marker, so the chart reads without colour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from edge.evaluate.chart import recall_grid, y_floor

_COLOURS = ("#1f5fa8", "#c8511b", "#2e8b3e", "#8e3ba8", "#b0871a", "#1a9aa0", "#c23a6b", "#444")
_MARKERS = ("circle", "square", "diamond", "triangle", "circle", "square", "diamond", "triangle")
_W, _H = 640, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 430, 16, 250

Line = tuple[str, Sequence[tuple[int, Mapping[str, Any]]]]  # group, [(size, cell)]


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}"/>'
    if kind == "diamond":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if kind == "triangle":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def recall_chart(
    lines: Sequence[Line], sizes: Sequence[int], title: str, targets: Mapping[int, float]
) -> str:
    """An inline `<svg>`; targets (size -> least recall) are drawn as short dashed marks."""
    lows = [c["low"] for _, points in lines for _, c in points if c["n"]]
    y_lo = y_floor(lows or [0.9])
    step = (_RIGHT - _LEFT) / max(1, len(sizes))

    def px(size: int) -> float:
        return _LEFT + step * (sizes.index(size) + 0.5)

    def py(value: float) -> float:
        return _BOTTOM - (_BOTTOM - _TOP) * (value - y_lo) / (1.0 - y_lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_RIGHT - _LEFT}" height="{_BOTTOM - _TOP}" '
        'fill="#fff" stroke="#999"/>',
    ]
    out += recall_grid(y_lo, _LEFT, _RIGHT, py)
    for size in sizes:
        x = px(size)
        out.append(f'<text x="{x:.1f}" y="{_BOTTOM + 16}" text-anchor="middle">{size} px</text>')
        if size in targets and targets[size] > y_lo:
            y = py(targets[size])
            out.append(
                f'<line x1="{x - step / 2 + 4:.1f}" y1="{y:.1f}" x2="{x + step / 2 - 4:.1f}" '
                f'y2="{y:.1f}" stroke="#c00" stroke-dasharray="4 3"><title>target '
                f"{100 * targets[size]:g} %</title></line>"
            )
    out.append(
        f'<text x="{(_LEFT + _RIGHT) / 2}" y="{_BOTTOM + 36}" text-anchor="middle">'
        "face size (shorter side of the labelled box)</text>"
    )
    spread = step * 0.5 / max(1, len(lines))  # side by side, so whiskers do not hide each other
    for i, (group, points) in enumerate(lines):
        colour, marker = _COLOURS[i % len(_COLOURS)], _MARKERS[i % len(_MARKERS)]
        shift = (i - (len(lines) - 1) / 2) * spread
        drawn = [(px(s) + shift, c) for s, c in points if c["n"]]
        path = " ".join(f"{x:.1f},{py(c['recall']):.1f}" for x, c in drawn)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        for x, c in drawn:
            out.append(
                f'<line x1="{x:.1f}" y1="{py(c["low"]):.1f}" x2="{x:.1f}" y2="{py(c["high"]):.1f}" '
                f'stroke="{colour}"/>'
            )
            out.append(_marker(marker, x, py(c["recall"]), colour))
        ly = _TOP + 10 + 20 * i
        out.append(_marker(marker, _RIGHT + 24, ly, colour))
        out.append(f'<text x="{_RIGHT + 36}" y="{ly + 4}">{escape(group[:28])}</text>')
    if not lows:
        out.append(f'<text x="{_LEFT + 12}" y="{_TOP + 24}">no faces in this cell</text>')
    out.append("</svg>")
    return "\n".join(out)
