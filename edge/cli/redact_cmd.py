"""`veil redact INPUT [-o OUTPUT] [--config FILE] [--audit-log LOG] [--key-dir DIR]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from edge.audit import DEFAULT_LOG_NAME, AuditLog, AuditTrail, c2pa, load_or_create
from edge.audit.c2pa import seal_for
from edge.audit.keys import check_outside, default_key_dir
from edge.audit.records import FileName
from edge.audit.trail import announce_detector
from edge.audit.verify_media import STATUS_NAMES
from edge.capture import FrameSource, ImageFileSource, VideoFileSource
from edge.cli.parser import Subparsers
from edge.cli.progress import terminal_size
from edge.config import Config, load_config
from edge.detect import FaceDetector, build_detector
from edge.digest import sha256_file
from edge.errors import AuditError, MediaError, OutputError, UsageError, VeilError
from edge.media import Job, media_kind, not_media, output_root, plan, skipped_line
from edge.names import shown
from edge.redact import Redactor
from edge.run import RunReport, run
from edge.run.schedule import Schedule
from edge.sinks import ImageFileSink, Sink
from edge.sinks.atomic import Seal, stale_partials
from edge.sinks.retention import partial_stem
from edge.sinks.video_file import video_sink_for

_LOG_NAME: TypeAdapter[str] = TypeAdapter(FileName)


def add_parser(subparsers: Subparsers) -> None:
    redact = subparsers.add_parser("redact")
    redact.add_argument(
        "input", type=Path, help="video (mp4/m4v/mov/mkv/avi), image (jpg/jpeg/png) or folder"
    )
    redact.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output folder (made if missing; a name without an extension is a folder), or for "
        "one input its file name, e.g. out/clip.mp4",
    )
    redact.add_argument("--config", type=Path, help="TOML profile, e.g. configs/recorded.toml")
    redact.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (never an input)"
    )
    redact.add_argument(
        "--audit-log",
        type=Path,
        help="append the run's audit records here (default: veil-audit.jsonl beside the outputs)",
    )
    redact.add_argument(
        "--key-dir",
        type=Path,
        help="the device key's folder (default: $VEIL_KEY_DIR, else the user data folder); "
        "never inside an output folder",
    )


def main(args: argparse.Namespace) -> int:
    return redact_command(
        args.input, args.output, args.config, args.overwrite, args.audit_log, args.key_dir
    )


class Runner:
    """Holds the models for a whole command (one detector per media kind, built on first use)
    and its audit trail, which every job reports to."""

    def __init__(self, cfg: Config, trail: AuditTrail, seal: Seal | None) -> None:
        self.cfg = cfg
        self.trail = trail
        self.seal = seal
        self.redactor = Redactor(cfg.redact)
        self._detectors: dict[str, FaceDetector] = {}

    def detector(self, kind: str) -> FaceDetector:
        if kind not in self._detectors:
            detector = build_detector(self.cfg.detector, still=kind == "image")
            announce_detector(detector, self.trail)
            self._detectors[kind] = detector
        return self._detectors[kind]

    def run_job(self, job: Job, show_progress: bool) -> RunReport:
        """Redact one input; its output, or its abandonment, is logged before this returns."""
        try:
            _LOG_NAME.validate_python(self.trail.name(job.dst))
        except ValidationError:
            # Checked first: an output the log cannot name would be published unlogged.
            raise OutputError(
                f"{shown(job.dst)}: the audit log cannot hold this name relative to its folder "
                "(a control character, or over 1024 characters); nothing written"
            ) from None
        report = RunReport()
        try:
            source_sha256 = sha256_file(job.src)[1]
        except OSError as exc:
            raise MediaError(f"cannot read {shown(job.src)}: {exc.strerror or exc}") from None
        try:
            self._run(job, show_progress, report)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            self.trail.file_discarded(report, job.dst, interrupted, None if interrupted else exc)
            raise
        assert report.output is not None
        try:
            self.trail.file_closed(report, report.output, job.kind, source_sha256)
        except BaseException:
            # Published, but the log could not take its record (a full disk): an output the log
            # does not hold would fail `verify --media` and vouch for nothing, so it goes.
            report.output.path.unlink(missing_ok=True)
            raise
        return report

    def _run(self, job: Job, show_progress: bool, report: RunReport) -> None:
        source: FrameSource
        sink: Sink
        # First: the detector's record may fail (a full log), and nothing is open yet to clean up.
        detector = self.detector(job.kind)
        limit = self.cfg.input.max_image_area
        if job.kind == "video":
            video = VideoFileSource(job.src, max_pixels=limit)
            source = video
            try:
                sink = video_sink_for(video, job.dst, self.cfg.video, self.seal)
            except BaseException:
                video.close()
                raise
            total = video.frame_count
        else:
            source = ImageFileSource(job.src, max_pixels=limit)
            sink = ImageFileSink(job.dst, seal=self.seal)
            total = 1
        with tqdm(
            total=total,
            unit="frame",
            desc=shown(job.src.name),
            disable=not show_progress,
            leave=False,
            **terminal_size(),
        ) as bar:
            run(
                source,
                detector,
                self.redactor,
                sink,
                self.cfg.track,
                on_frame=lambda: bar.update(),
                observe=self.trail.observe,
                report=report,
                schedule=Schedule.of(detector, self.cfg.schedule),
            )


def _summary(job: Job, report: RunReport) -> str:
    # Masks, not faces: one face on 120 frames is 120 masks (Veil never counts people).
    text = (
        f"{shown(job.src)} -> {shown(job.dst)}: {report.frames_out} frame(s), {report.faces} "
        "face mask(s) drawn"
    )
    if job.kind == "video":
        fps = report.frames_out / report.seconds if report.seconds else 0.0
        text += f", {fps:.1f} frames/s, audio and metadata dropped"
    if report.obscured:
        causes = ", ".join(f"{k} x{v}" for k, v in report.failures.items())
        text += f"; FAIL-CLOSED: {report.obscured} frame(s) fully obscured ({causes})"
    return text


def redact_command(
    src: Path,
    dst: Path | None,
    config: Path | None,
    overwrite: bool,
    audit_log: Path | None = None,
    key_dir: Path | None = None,
) -> int:
    """Exit 0 when every output is written; 3 when they are, but some frames were fully obscured
    (fail closed); 1 when an input failed; 2 on a usage error. Every case is in the audit log."""
    cfg = load_config(config)
    jobs = plan(src, dst, overwrite=overwrite)
    key_folder = key_dir or default_key_dir()
    root = output_root(src, jobs)  # every output lies under it
    check_outside(key_folder, root)
    # Default: beside the outputs (in the output folder of a folder run).
    log_path = audit_log or root / DEFAULT_LOG_NAME
    if media_kind(log_path) is not None:
        raise UsageError(f"audit log {log_path} has a media file's name; use .jsonl")
    if cfg.audit.c2pa and not c2pa.available():
        raise UsageError(c2pa.MISSING)
    key, created = load_or_create(key_folder)
    if created:
        print(
            f"veil: made the device key in {shown(key_folder)} (id {key.key_id}); export its "
            "public half with `veil audit pubkey`",
            file=sys.stderr,
        )
    if src.is_dir() and (skipped := not_media(src, own={DEFAULT_LOG_NAME, *STATUS_NAMES})):
        print(skipped_line(src, skipped), file=sys.stderr)
    _remove_stale_partials({job.dst.parent for job in jobs if job.refused is None})
    with AuditLog(log_path, key) as log:
        trail = AuditTrail(log, cfg)
        trail.start("files")
        with trail.stopping() as outcome:
            failed, obscured = _run_jobs(jobs, Runner(cfg, trail, seal_for(cfg, key)))
            outcome.status = "error" if failed else "fail-closed" if obscured else "ok"
    print(f"audit log: {shown(log_path)} (run {trail.run[:8]}, key {key.key_id})", file=sys.stderr)
    if failed:
        print(
            f"veil: error: {failed} of {len(jobs)} input(s) failed; the others were written",
            file=sys.stderr,
        )
        return 1
    return 3 if obscured else 0


def _remove_stale_partials(folders: Iterable[Path]) -> None:
    """The hidden partial outputs that runs killed outright (SIGKILL, a power cut) left where this
    run writes: nothing else removes them, and `veil audit verify --media` counts them. Partial
    segments stay, for `veil run` to recover."""
    removed = 0
    for path in stale_partials(folders):
        if partial_stem(path) is not None:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed += 1
    if removed:
        print(
            f"veil: removed {removed} unfinished output(s) left by a run that was killed",
            file=sys.stderr,
        )


def _run_jobs(jobs: list[Job], runner: Runner) -> tuple[int, int]:
    """Run every job; returns (inputs failed, frames fully obscured). In a folder run a failed
    input is reported and skipped, unless the audit log fails: nothing is written unlogged."""
    show_progress = sys.stderr.isatty()
    failed = obscured = 0
    for job in jobs:
        if job.refused is not None:
            failed += 1
            print(f"veil: error: {job.refused}", file=sys.stderr)
            continue
        try:
            report = runner.run_job(job, show_progress)
        except AuditError:
            raise
        except VeilError as exc:
            if len(jobs) == 1:
                raise
            failed += 1
            print(f"veil: error: {shown(exc)}", file=sys.stderr)
            continue
        except Exception as exc:
            # A fault no check foresaw (a decoder's, a library's) costs this input only; its
            # output was already discarded, and logged as such, by run_job.
            what = shown(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            error = MediaError(
                f"{shown(job.src)}: failed unexpectedly ({type(exc).__name__}"
                + (f": {what})" if what else ")")
            )
            if len(jobs) == 1:
                raise error from exc
            failed += 1
            print(f"veil: error: {error}", file=sys.stderr)
            continue
        obscured += report.obscured
        print(_summary(job, report), file=sys.stderr)
    return failed, obscured
