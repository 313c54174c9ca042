"""`veil redact INPUT [-o OUTPUT] [--config FILE]`."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from edge.capture import FrameSource, ImageFileSource, VideoFileSource
from edge.cli.progress import terminal_size
from edge.config import Config, load_config
from edge.detect import FaceDetector, build_detector
from edge.errors import VeilError
from edge.media import Job, plan
from edge.pipeline import RunReport, run, video_sink_for
from edge.redact import Redactor
from edge.sinks import ImageFileSink, Sink


class Runner:
    """Holds the models for a whole command: one detector per media kind, built on first use."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.redactor = Redactor(cfg.redact)
        self._detectors: dict[str, FaceDetector] = {}

    def detector(self, kind: str) -> FaceDetector:
        if kind not in self._detectors:
            self._detectors[kind] = build_detector(self.cfg.detector, still=kind == "image")
        return self._detectors[kind]

    def run_job(self, job: Job, show_progress: bool) -> RunReport:
        source: FrameSource
        sink: Sink
        if job.kind == "video":
            video = VideoFileSource(job.src)
            source = video
            try:
                sink = video_sink_for(video, job.dst, self.cfg.video)
            except BaseException:
                video.close()
                raise
            total = video.frame_count
        else:
            source = ImageFileSource(job.src)
            sink = ImageFileSink(job.dst)
            total = 1
        detector = self.detector(job.kind)
        with tqdm(
            total=total,
            unit="frame",
            desc=job.src.name,
            disable=not show_progress,
            leave=False,
            **terminal_size(),
        ) as bar:
            return run(
                source,
                detector,
                self.redactor,
                sink,
                self.cfg.track,
                on_frame=lambda: bar.update(),
            )


def _summary(job: Job, report: RunReport) -> str:
    text = f"{job.src} -> {job.dst}: {report.frames_out} frame(s), {report.faces} face(s) redacted"
    if job.kind == "video":
        fps = report.frames_out / report.seconds if report.seconds else 0.0
        text += f", {fps:.1f} frames/s, audio and metadata dropped"
    if report.obscured:
        causes = ", ".join(f"{k} x{v}" for k, v in report.failures.items())
        text += f"; FAIL-CLOSED: {report.obscured} frame(s) fully obscured ({causes})"
    return text


def redact_command(src: Path, dst: Path | None, config: Path | None, overwrite: bool) -> int:
    cfg = load_config(config)
    jobs = plan(src, dst, overwrite=overwrite)
    runner = Runner(cfg)
    show_progress = sys.stderr.isatty()
    failed = 0
    for job in jobs:
        try:
            report = runner.run_job(job, show_progress)
        except VeilError as exc:
            if len(jobs) == 1:
                raise
            failed += 1
            print(f"veil: error: {exc}", file=sys.stderr)
            continue
        print(_summary(job, report), file=sys.stderr)
    if failed:
        print(
            f"veil: error: {failed} of {len(jobs)} input(s) failed; the others were written",
            file=sys.stderr,
        )
        return 1
    return 0
