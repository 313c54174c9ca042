"""Human summaries of a verified log: a few lines for `verify`, tables for `show`."""

from __future__ import annotations

from collections import Counter

from edge.audit.head import format_head
from edge.audit.records import COUNTS
from edge.audit.verify import Verdict
from edge.names import shown


def _span(v: Verdict) -> str:
    if not v.runs:
        return "no runs"
    first = v.runs[0].start_utc[:19] + "Z"
    last = max((r.stop_utc or r.start_utc) for r in v.runs)[:19] + "Z"
    return f"{len(v.runs)} run(s), {first} to {last}"


def render_summary(v: Verdict) -> str:
    totals: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    for run in v.runs:
        totals.update(run.counts)
        causes.update(run.fail_closed)
    logged = [f for f in v.files.values() if not f.deleted]
    lines = [
        f"{shown(v.path)}: {v.records} record(s), {_span(v)}",
        f"frames: {totals['frames_in']} in, {totals['frames_out']} out, {totals['dropped']} "
        f"dropped, {totals['obscured']} fully obscured"
        # Frames a live run left out evenly to keep up: in, neither out nor lost.
        + (f", {totals['not_taken']} not taken" if totals["not_taken"] else "")
        + f"; {totals['faces']} face mask(s) drawn",
        "fail-closed: "
        + (", ".join(f"{k} x{n}" for k, n in sorted(causes.items())) if causes else "none"),
        f"files: {len(logged)} logged"
        + (f", {v.media_checked} checked against their hashes" if v.media_checked else "")
        + (f", {v.c2pa_checked} C2PA manifest(s) valid" if v.c2pa_checked else ""),
    ]
    if v.head is not None:
        lines.append(f"head: {format_head(*v.head)}")
    if not v.trusted_keys and v.runs:
        ids = ", ".join(sorted({r.key_id for r in v.runs}))
        lines.append(
            f"origin NOT checked: signatures hold under the key(s) the log names ({ids}); "
            "pass --pubkey with the device's key to prove where the records come from"
        )
    lines += [f"note: {shown(n)}" for n in v.notes]
    if v.ok:
        lines.append("OK: the chain, every signature and every sequence number hold")
    else:
        more = len(v.problems) - 1
        lines.append(
            f"FAILED: {v.problems[0]}" + (f" (and {more} more problem(s) after it)" if more else "")
        )
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    rows = [[shown(cell) for cell in row] for row in rows]  # names come from the log: escaped
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in rows]
    return "\n".join(line.rstrip() for line in out)


def render_tables(v: Verdict) -> str:
    runs = [
        [
            r.run[:8],
            r.start_utc[:19] + "Z",
            r.status or "(no stop)",
            *(str(r.counts[name]) for name in COUNTS),
            str(r.files),
            ", ".join(f"{k} x{n}" for k, n in sorted(r.fail_closed.items())) or "-",
        ]
        for r in v.runs
    ]
    files = [
        [f.name, f.kind, str(f.frames), str(f.size), f.sha256[:16], "deleted" if f.deleted else ""]
        for f in v.files.values()
    ]
    outputs = [[r.run[:8], name, what] for r in v.runs for name, what in r.outputs.items()]
    counts = ["in", "out", "dropped", "obscured", "faces", "not-taken"]  # `COUNTS`, in its order
    header = ["run", "started (UTC)", "status", *counts]
    return "\n\n".join(
        [
            _table([*header, "files", "fail-closed"], runs),
            _table(["file", "kind", "frames", "bytes", "sha256", ""], files),
            *([_table(["run", "what", "on, where to, what it sent"], outputs)] if outputs else []),
            "",
        ]
    )
