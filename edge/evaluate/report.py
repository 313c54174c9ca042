"""The evaluation summary as a terminal table, and as a JSON file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge.errors import OutputError
from edge.evaluate.metrics import MIN_FACE_PX
from edge.sinks.atomic import AtomicFile

# WIDER FACE's meaning of each attribute value.
_ATTR_NAMES = {
    "blur": {"0": "clear", "1": "normal", "2": "heavy"},
    "occlusion": {"0": "none", "1": "partial", "2": "heavy"},
    "pose": {"0": "typical", "1": "atypical"},
    "illumination": {"0": "normal", "1": "extreme"},
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Columns padded to fit; the first left-aligned, the others right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(parts).rstrip())
    lines.insert(1, "  " + "  ".join("-" * w for w in widths))
    return lines


def _ratio_row(label: str, r: Mapping[str, Any]) -> list[object]:
    return [label, r["protected"], r["total"], _pct(r["recall"])]


def _images(images: Mapping[str, Any]) -> list[str]:
    rows = [_ratio_row(f"{b['bin']} px", b) for b in images["by_size"]]
    rows.append(_ratio_row(f">= {MIN_FACE_PX} px", images[f"faces_{MIN_FACE_PX}px_up"]))
    rows.append(_ratio_row("all sizes", images["faces"]))
    out = [f"Images ({images['count']}): faces protected, by shorter side of the box"]
    out += _table(["face size", "protected", "faces", "recall"], rows)
    attr_rows = [
        _ratio_row(f"{name} {value} {_ATTR_NAMES.get(name, {}).get(value, '')}".rstrip(), r)
        for name, values in images["by_attribute"].items()
        for value, r in values.items()
    ]
    if attr_rows:
        out += ["", "Images: by WIDER attribute (WIDER images, all sizes)"]
        out += _table(["attribute", "protected", "faces", "recall"], attr_rows)
    return out


def _video_row(label: str, v: Mapping[str, Any], key: str) -> list[object]:
    """One row of the video table, for one video or for all of them together."""
    ff = v["face_frames"]
    return [
        label,
        v["frames"],
        f"{ff['protected']}/{ff['total']}",
        _pct(ff["recall"]),
        _pct(v[key]["recall"]),
        v["frames_with_leak"],
        v["longest_leak_run"],
        v["obscured"],
    ]


def _videos(videos: Mapping[str, Any]) -> list[str]:
    key = f"face_frames_{MIN_FACE_PX}px_up"
    rows = [_video_row(Path(v["file"]).name, v, key) for v in videos["per_video"]]
    rows.append(_video_row("all videos", videos, key))
    headers = [
        "video",
        "frames",
        "face-frames",
        "recall",
        f">= {MIN_FACE_PX} px",
        "leak frames",
        "longest leak",
        "fail-closed",
    ]
    out = [f"Videos ({videos['count']}): face-frames protected"]
    out += _table(headers, rows)
    out += ["", "Videos: face-frames by shorter side of the box"]
    out += _table(
        ["face size", "protected", "face-frames", "recall"],
        [_ratio_row(f"{b['bin']} px", b) for b in videos["by_size"]],
    )
    return out


def _over(over: Mapping[str, Any]) -> list[str]:
    what = f"textured {over['cell_px']} px cells away from faces destroyed"
    if not over["images"]:
        out = ["Over-redaction: no image with an exhaustive annotation"]
    else:
        out = [
            f"Over-redaction, {over['images']} exhaustively annotated image(s): "
            f"{over['destroyed_cells']} of {over['textured_cells']} {what} "
            f"({_pct(over['share'])})"
        ]
    worst = sorted(
        (i for i in over["per_image"] if i["destroyed_cells"]), key=lambda i: -float(i["share"])
    )[:3]
    out += [
        f"  most: {i['file']}: {i['destroyed_cells']}/{i['textured_cells']} ({_pct(i['share'])})"
        for i in worst
    ]
    videos = over["videos"]
    if videos["count"]:
        out.append(
            f"Over-redaction, annotated frames of {videos['count']} exhaustively annotated "
            f"video(s): {videos['destroyed_cells']} of {videos['textured_cells']} {what} "
            f"({_pct(videos['share'])})"
        )
        out += [
            f"  {Path(v['file']).name}: {v['destroyed_cells']}/{v['textured_cells']} "
            f"({_pct(v['share'])})"
            for v in videos["per_video"]
        ]
    return out


def render(summary: Mapping[str, Any]) -> str:
    """The readable report: what stdout shows."""
    out = [
        f"veil eval {summary['set']}: {summary['images']['count']} image(s), "
        f"{summary['videos']['count']} video(s), config sha256 {summary['config_sha256'][:12]}",
        "A face is protected when the output keeps < 0.4 of its detail in every quadrant.",
        "",
    ]
    if summary["images"]["count"]:
        out += _images(summary["images"]) + [""]
    if summary["videos"]["count"]:
        out += _videos(summary["videos"]) + [""]
    out += _over(summary["over_redaction"]) + [""]
    pipeline = summary["pipeline"]
    out.append(
        "Fail-closed frames (covered whole): "
        + ", ".join(f"{kind} {entry['fail_closed']}" for kind, entry in pipeline.items())
    )
    return "\n".join(out)


def write_text(file: AtomicFile, text: str) -> None:
    """Write a report through `file` (opened early, so an unwritable path fails before work)."""
    try:
        file.temp.write_text(text, encoding="utf-8")
    except OSError as exc:
        file.discard()
        raise OutputError(f"cannot write {file.final}: {exc.strerror or exc}") from None
    file.commit()


def to_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=1, allow_nan=False) + "\n"
