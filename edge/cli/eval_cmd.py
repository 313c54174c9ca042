"""`veil eval SET_DIR`: Veil's real pipeline over a `faceblur-eval/1` set, in memory; how many
annotated faces survived, how much else was destroyed. Only the reports asked for are written.
With `--recording`, a `veil run` output folder is scored instead of running the pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from edge import __version__
from edge.audit.settings import public_config
from edge.cli.parser import Subparsers
from edge.cli.progress import terminal_size
from edge.config import load_config
from edge.detect import pinned_models
from edge.errors import UsageError
from edge.evaluate.chart import Series, check_chart_path, render_chart, summary_series
from edge.evaluate.equal_protection import render_audit
from edge.evaluate.evalset import check_media, load_evalset
from edge.evaluate.group_clip import write_group_clip
from edge.evaluate.groups import evaluate_groups, read_image, sweep_series
from edge.evaluate.groups_text import render_groups
from edge.evaluate.metrics import (
    MIN_FACE_PX,
    ImageResult,
    VideoResult,
    image_summary,
    over_redaction_summary,
    video_summary,
)
from edge.evaluate.protection import KEEP_LIMIT, WHOLE_ELLIPSE_BELOW
from edge.evaluate.recording import render_score, score_recording
from edge.evaluate.report import render, to_json, write_text
from edge.evaluate.runner import EvalRunner
from edge.evaluate.size_sweep import CONDITIONS
from edge.run import RunReport
from edge.sinks.atomic import AtomicFile


def add_parser(subparsers: Subparsers) -> None:
    evaluate = subparsers.add_parser("eval")
    evaluate.add_argument("set_dir", type=Path, help="folder holding annotations.json and media")
    evaluate.add_argument("--config", type=Path, help="TOML profile to evaluate")
    evaluate.add_argument("--json", type=Path, help="write every number here")
    evaluate.add_argument("--chart", type=Path, help="write recall by face size here (.html)")
    evaluate.add_argument(
        "--no-sweep",
        action="store_true",
        help="labelled sets: skip re-rendering the faces at each --sizes (slow)",
    )
    evaluate.add_argument(
        "--sizes", default="12,16,24,32", help="labelled sets: face sizes (px) of the sweep"
    )
    evaluate.add_argument(
        "--conditions",
        default="clear",
        help="labelled sets: the sweep's conditions, comma-separated, from "
        "clear,low_light,blur,low_light+blur (each recipe is printed in the report)",
    )
    evaluate.add_argument(
        "--audit-report",
        type=Path,
        help="labelled sets: write the equal-protection audit here, one self-contained page "
        "(.html)",
    )
    evaluate.add_argument(
        "--limit", type=int, help="evaluate only the first N images and the first N videos"
    )
    evaluate.add_argument(
        "--recording",
        type=Path,
        help="score this `veil run` output folder (played from the set's video with "
        "--source file:...) instead of running the pipeline",
    )
    evaluate.add_argument("--video", help="with --recording: which of the set's videos it is")
    evaluate.add_argument(
        "--live-score",
        type=Path,
        metavar="JSON",
        help="with --audit-report: a labelled clip's recording scored by group "
        "(`veil eval CLIP --recording DIR --json JSON`), shown beside the stills",
    )
    evaluate.add_argument(
        "--make-live-clip",
        type=Path,
        metavar="OUT",
        help="labelled sets: instead of evaluating, write a dim body-camera clip of the set's "
        "faces into OUT, annotated with each face's labels, to play to `veil run` and score "
        "with --recording by group",
    )
    evaluate.add_argument(
        "--seconds", type=float, default=60.0, help="with --make-live-clip: its length"
    )
    evaluate.add_argument(
        "--clip-source",
        default="fairface",
        help="with --make-live-clip: the source whose faces it shows (default fairface: whole "
        "photos, where UTKFace holds face-only chips); 'all' for every source",
    )


def main(args: argparse.Namespace) -> int:
    if args.make_live_clip is not None:
        return make_live_clip(args.set_dir, args.make_live_clip, args.seconds, args.clip_source)
    if args.recording is not None:
        score = score_recording(args.set_dir, args.recording, args.video)
        print(render_score(score))
        if args.json is not None:
            args.json.write_text(json.dumps(score.as_dict(), indent=2) + "\n", encoding="utf-8")
        return 0
    return eval_command(
        args.set_dir,
        args.config,
        args.json,
        args.chart,
        sweep=not args.no_sweep,
        sizes=parse_sizes(args.sizes),
        conditions=parse_conditions(args.conditions),
        limit=args.limit,
        audit_path=args.audit_report,
        live=read_live_score(args.live_score) if args.live_score is not None else None,
    )


def read_live_score(path: Path) -> dict[str, Any]:
    """A `veil eval CLIP --recording DIR --json` file of a labelled clip, checked."""
    try:
        score = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--live-score {path}: cannot read it ({exc})") from None
    if not isinstance(score, dict) or not score.get("groups"):
        raise UsageError(
            f"--live-score {path}: not a labelled clip's recording score (no groups); make it "
            "with `veil eval CLIP --recording DIR --json FILE`"
        )
    return score


def make_live_clip(set_dir: Path, out: Path, seconds: float, source: str) -> int:
    if not 1.0 <= seconds <= 600.0:
        raise UsageError(f"--seconds {seconds:g}: a clip of 1 to 600 s")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out}: not empty; the clip is written into a new folder")
    evalset = load_evalset(set_dir)
    labelled = [
        item
        for item in evalset.images
        if item.labels is not None and item.faces and source in ("all", item.source or item.subset)
    ]
    if not labelled:
        raise UsageError(f"{set_dir}: no labelled faces of source {source!r} (a groups set)")
    check_media(set_dir, [item.file for item in labelled])
    annotations = write_group_clip(set_dir, labelled, out, read_image, seconds=seconds)
    (video,) = annotations["videos"]
    faces = sum(len(f["faces"]) for f in video["frames"])
    print(
        f"wrote {out / video['file']}: {video['num_frames']} frames, {len(labelled)} labelled "
        f"faces, {faces} face-frames; play it with `veil run --source file:...` and score the "
        f"recording with `veil eval {out} --recording DIR`"
    )
    return 0


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--sizes {text!r} is not a comma-separated list of pixels") from None
    if not sizes or any(not 4 <= s <= 1024 for s in sizes):
        raise UsageError(f"--sizes {text!r}: each size must be 4 to 1024 px")
    return sizes


def parse_conditions(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(v.strip() for v in text.split(",")))
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown or not names:
        raise UsageError(
            f"--conditions {text!r}: unknown {', '.join(repr(u) for u in unknown) or 'empty'}; "
            f"known: {','.join(CONDITIONS)}"
        )
    return names


def _pipeline(report: RunReport) -> dict[str, Any]:
    return {
        "frames": report.frames_out,
        "masks": report.faces,
        "fail_closed": report.obscured,
        "causes": dict(report.failures),
    }


def eval_command(
    set_dir: Path,
    config: Path | None,
    json_path: Path | None,
    chart_path: Path | None,
    *,
    sweep: bool = True,
    sizes: Sequence[int] = (12, 16, 24, 32),
    conditions: Sequence[str] = ("clear",),
    limit: int | None = None,
    audit_path: Path | None = None,
    live: dict[str, Any] | None = None,
) -> int:
    if live is not None and audit_path is None:
        raise UsageError("--live-score goes on the --audit-report page: name that page too")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit}: must be 1 or more")
    for path in (chart_path, audit_path):
        if path is not None:
            check_chart_path(path)
    cfg = load_config(config)
    evalset = load_evalset(set_dir)
    images, videos = evalset.images[:limit], evalset.videos[:limit]
    check_media(set_dir, [i.file for i in images] + [v.file for v in videos])
    labelled = [i for i in images if i.labels]
    if audit_path is not None and not labelled:
        raise UsageError(f"--audit-report: {set_dir} has no labelled faces (no `labels` to audit)")
    # Opened now, so that an unwritable path fails before the long part.
    outputs = [
        AtomicFile(p) if p is not None else None for p in (json_path, chart_path, audit_path)
    ]
    try:
        runner = EvalRunner(set_dir, cfg)
        image_results: list[ImageResult] = []
        video_results: list[VideoResult] = []
        with tqdm(
            total=len(images) + sum(v.num_frames for v in videos),
            unit="frame",
            desc="eval",
            disable=not sys.stderr.isatty(),
            leave=False,
            **terminal_size(),
        ) as bar:
            for item in images:
                image_results.append(runner.image(item))
                bar.update()
            for video in videos:
                video_results.append(runner.video(video, on_frame=bar.update))
        summary: dict[str, Any] = {
            "format": "veil-eval/1",
            "set": str(set_dir),
            "limit": limit,
            "veil_version": __version__,
            # Reports get published: a camera URL's credentials are masked, as in the audit log.
            "config_sha256": public_config(cfg).sha256(),
            "config": public_config(cfg).model_dump(mode="json"),
            "models": pinned_models(cfg.detector),
            "protection": {
                "keep_limit": KEEP_LIMIT,
                "whole_ellipse_below_px": WHOLE_ELLIPSE_BELOW,
                "headline_min_face_px": MIN_FACE_PX,
            },
            "images": image_summary(image_results),
            "over_redaction": over_redaction_summary(image_results, video_results),
            "videos": video_summary(video_results),
        }
        groups_text = ""
        extra: list[Series] = []
        if labelled:
            groups = evaluate_groups(
                set_dir, labelled, runner.protect, sizes=sizes, sweep=sweep, conditions=conditions
            )
            summary["groups"], groups_text = groups, render_groups(groups)
            extra = [Series(f"group {label}", points) for label, points in sweep_series(groups)]
        summary["pipeline"] = {
            kind: _pipeline(report)
            for kind, report in runner.reports.items()
            if report.frames_out or kind != "groups"
        }
        print(render(summary))
        if groups_text:
            print("\n" + groups_text)
        json_file, chart_file, audit_file = outputs
        if json_file is not None:
            write_text(json_file, to_json(summary))
            print(f"wrote {json_file.final}", file=sys.stderr)
        if chart_file is not None:
            title = f"veil eval {set_dir}: recall by face size"
            write_text(chart_file, render_chart(summary_series(summary) + extra, title))
            print(f"wrote {chart_file.final}", file=sys.stderr)
        if audit_file is not None:
            write_text(audit_file, render_audit(summary, live))
            print(f"wrote {audit_file.final}", file=sys.stderr)
    except BaseException:
        for file in outputs:
            if file is not None:
                file.discard()
        raise
    return 0
