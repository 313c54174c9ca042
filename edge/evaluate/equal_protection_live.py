"""The equal-protection page's live section: a `veil run` recording of a labelled clip
(`edge.evaluate.group_clip`), scored by group (`veil eval CLIP --recording DIR --json F`)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from edge.evaluate.recording_groups import worst_and_gap


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def live_section(score: Mapping[str, Any]) -> list[str]:
    """HTML lines: per perceived race, face-frames protected with 95 % intervals and faces
    that leaked on some frame, for every face and for faces of 15 px and more."""
    groups = score.get("groups")
    if not groups:
        raise ValueError("the live score holds no groups: score a labelled clip's recording")
    out = [
        '<section id="live"><h2>Live: <code>veil run</code> on a dim body-camera clip of these '
        "faces</h2>",
        f"<p>{score['recorded']} frames recorded of {score['source_frames']} source frames "
        f"({score['dropped']} not recorded: not taken to keep up, or dropped); "
        f"{score['protected']} of {score['face_frames']} face-frames protected on the frames "
        f"recorded ({_pct(score.get('protected_share'))}), longest run of frames with a leak "
        f"{score['longest_leak']}. Face-frames of one face are not independent: the interval "
        "is the optimistic one, and the faces that leaked on some frame are counted beside "
        "it.</p>",
    ]
    for floor, attributes in groups.items():
        cells = attributes.get("race_group", {})
        label = (
            "every face" if floor == "0px" else f"faces of {floor.removesuffix('px')} px and more"
        )
        spread = worst_and_gap(cells)
        worst = spread["worst"] if spread else None
        out.append(f"<h3>By perceived race, {escape(label)}</h3><table><thead><tr>")
        out.append(
            "<th>group</th><th>face-frames protected</th><th>recall [95 % CI]</th>"
            "<th>faces leaked</th></tr></thead><tbody>"
        )
        for group, c in cells.items():
            lo, hi = c["interval"]
            name = f"<b>{escape(group)}</b>" if group == worst else escape(group)
            out.append(
                f"<tr><td>{name}</td><td>{c['protected']} / {c['face_frames']}</td>"
                f"<td>{_pct(c['recall'])} [{100 * lo:.1f}–{100 * hi:.1f}]</td>"
                f"<td>{c['faces_leaked']} / {c['faces']}</td></tr>"
            )
        out.append("</tbody></table>")
        if spread:
            out.append(
                f"<p>Worst {escape(spread['worst'])}, best {escape(spread['best'])}: a gap of "
                f"{spread['gap_points']:.2f} points of face-frame recall.</p>"
            )
    return [*out, "</section>"]
