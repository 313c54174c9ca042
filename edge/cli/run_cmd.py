"""`veil run`: the live camera loop, recording only redacted video, unattended.

The config is validated and the source spec parsed before any camera opens (exit 2). The run
ends at `--duration`, at the end of a file source, or on SIGTERM/SIGINT, whichever comes first:
the frames in flight reach the sink, the current segment is closed and logged, the log gets its
`run_stop`, and the exit code is 0, 3 when frames were fully obscured, or 4 when the device
could not keep up even at the profile's `min_fps` (`edge.run.pace`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from edge.audit import DEFAULT_LOG_NAME, AuditLog, AuditTrail, load_or_create
from edge.audit.c2pa import seal_for
from edge.audit.keys import check_outside, default_key_dir
from edge.audit.log import logged_files
from edge.audit.trail import announce_detector
from edge.capture.live import RunClock
from edge.capture.spec import OpenOptions, SourceSpec, check_backend, open_source, parse_spec
from edge.cli.credentials import guard_arguments, warn_arguments, warn_if_readable
from edge.cli.numbers import seconds
from edge.cli.outputs import open_outputs, plan_outputs
from edge.cli.parser import Subparsers
from edge.cli.service import supervised
from edge.config import Config, load_config
from edge.detect import build_detector
from edge.errors import AuditError, UsageError
from edge.media import media_kind
from edge.redact import Redactor
from edge.run import Realtime, RunReport, StatusBoard, run
from edge.run.pace import Pace, calibrate
from edge.run.schedule import Schedule
from edge.sinks.base import Discard, Published, Tap
from edge.sinks.segments import SegmentSink, StorageFull

DEFAULT_OUTPUT = Path("recordings")
STATUS_NAME = "status.json"
CANNOT_KEEP_UP = 4  # the exit code of a run that lost too many frames even at `min_fps`
# A run's timer waits on a lock, whose timeout has a platform limit (about 292 years): a
# duration is bounded well inside it.
DURATION = seconds(0.01, 1e9)


@dataclass(frozen=True)
class RunArgs:
    config: Path | None
    source: str | None = None
    output_dir: Path | None = None
    duration: float | None = None
    realtime: bool = False
    loop: bool = False
    audit_log: Path | None = None
    key_dir: Path | None = None
    status: Path | None = None
    preview: str | None = None
    stream_out: str | None = None


def add_parser(subparsers: Subparsers) -> None:
    live = subparsers.add_parser("run")
    live.add_argument("--config", type=Path, help="TOML profile, e.g. configs/bodycam.toml")
    live.add_argument(
        "--source",
        help="picamera2[:N], v4l2:/dev/videoN, rtsp://..., http(s)://..., gst:PIPELINE or "
        "file:PATH (default: the profile's [live] source)",
    )
    live.add_argument(
        "--output-dir", type=Path, help="segments, status and audit log (default: recordings)"
    )
    live.add_argument("--duration", type=DURATION, help="stop after this many seconds")
    live.add_argument(
        "--realtime",
        action="store_true",
        help="file sources: play at the file's own frame rate, as a camera would",
    )
    live.add_argument(
        "--loop", action="store_true", help="file sources: replay the file until stopped"
    )
    live.add_argument("--audit-log", type=Path, help="default: OUTPUT_DIR/veil-audit.jsonl")
    live.add_argument("--key-dir", type=Path, help="the device key's folder (as for redact)")
    live.add_argument("--status", type=Path, help="status file (default: OUTPUT_DIR/status.json)")
    live.add_argument(
        "--preview",
        metavar="HOST:PORT",
        help="serve the redacted preview page here (default: the profile's [preview] bind); "
        "any address but loopback needs the access token (`veil preview url`)",
    )
    live.add_argument(
        "--stream-out",
        metavar="URL",
        help="also push the redacted video to rtsp://HOST:PORT/PATH, or write it to standard "
        "output with - (default: the profile's [stream_out] url)",
    )


def main(args: argparse.Namespace) -> int:
    return run_command(
        RunArgs(
            args.config,
            args.source,
            args.output_dir,
            args.duration,
            args.realtime,
            args.loop,
            args.audit_log,
            args.key_dir,
            args.status,
            args.preview,
            args.stream_out,
        )
    )


class LiveEvents:
    """Source faults and the recording's events, to the audit log and the status board."""

    def __init__(self, trail: AuditTrail, board: StatusBoard, report: RunReport) -> None:
        self.trail, self.board, self.report = trail, board, report
        # Set before run_stop: a segment a hung disk finishes after that is logged by the next
        # run, which finds it unlogged (nothing may follow a run's stop record).
        self.closed = False

    def source_lost(self, kind: str, reason: str) -> None:
        self.trail.source_lost(kind, reason)
        why = getattr(self.board.source_state, "problem", None) or reason
        print(f"veil: source lost: {why}; reconnecting", file=sys.stderr)

    def source_restored(self, kind: str, offline_s: float, attempts: int) -> None:
        self.trail.source_restored(kind, offline_s, attempts)
        print(f"veil: source back after {offline_s:.1f} s", file=sys.stderr)

    def segment_closed(self, out: Published, *, recovered: bool) -> None:
        if self.closed:
            return
        self.trail.file_closed(self.report, out, "video", None, recovered=recovered)
        self.board.segments += 1

    def segment_discarded(
        self,
        path: Path,
        frames: int,
        reason: Discard,
        error: BaseException | None,
    ) -> None:
        self.trail.discarded(path, frames, reason, error)

    def segment_deleted(self, path: Path, sha256: str, reason: str) -> None:
        if not self.closed:
            self.trail.file_deleted(path, sha256, reason)

    def storage_full(self, free_bytes: int) -> None:
        self.board.storage_full = True
        self.trail.storage("full", free_bytes)
        print("veil: error: the disk is full; recording paused", file=sys.stderr)

    def storage_resumed(self, free_bytes: int) -> None:
        self.board.storage_full = False
        self.trail.storage("resumed", free_bytes)


def check(args: RunArgs) -> tuple[Config, SourceSpec, Path]:
    """Everything that can be wrong before a camera opens: config, source, folders (exit 2)."""
    cfg = load_config(args.config)
    spec = parse_spec(args.source or cfg.live.source)
    check_backend(spec)
    out = args.output_dir or DEFAULT_OUTPUT
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file")
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds")
    if spec.kind == "file":
        path = Path(spec.target)
        if path.is_dir():
            raise UsageError(
                f"source {path} is a folder; veil run plays one video file: give a file, "
                f"or use `veil redact {path}` for a folder"
            )
        if not path.is_file():
            raise UsageError(f"source file not found: {path}")
        if path.resolve().parent == out.resolve():
            raise UsageError(f"source {path} is inside the output folder {out}")
    if args.audit_log is not None and media_kind(args.audit_log) is not None:
        raise UsageError(f"audit log {args.audit_log} has a media file's name; use .jsonl")
    return cfg, spec, out


@contextmanager
def _stopped_by_signals(clock: RunClock) -> Iterator[None]:
    """SIGTERM and SIGINT end the run cleanly (the segment and the log are closed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        clock.stop.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_command(args: RunArgs) -> int:
    exposed = guard_arguments({"--source": args.source, "--stream-out": args.stream_out})
    cfg, spec, out = check(args)
    outputs = plan_outputs(cfg, args.preview, args.stream_out)
    warn_arguments(exposed)
    warn_if_readable(args.config, [cfg.live.source, cfg.stream_out.url])
    key_folder = args.key_dir or default_key_dir()
    check_outside(key_folder, out)
    key, created = load_or_create(key_folder)
    if created:
        print(f"veil: made the device key in {key_folder} (id {key.key_id})", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    log_path = args.audit_log or out / DEFAULT_LOG_NAME
    clock = RunClock()
    report = RunReport()
    with AuditLog(log_path, key) as log:
        trail = AuditTrail(log, cfg)
        trail.start("camera", spec.kind)
        board = StatusBoard(
            args.status or out / STATUS_NAME,
            report,
            out,
            spec.label,
            trail.run,
            cfg.live.max_latency_ms,
        )
        events = LiveEvents(trail, board, report)

        paces: list[Pace] = []

        def tick() -> None:
            try:
                for pace in paces:
                    _told(pace, trail)
                trail.observe(report)
            except AuditError:
                # Nothing may be recorded that the log cannot hold: the run stops, and its stop
                # record's write reports the log's first error.
                clock.stop.set()

        board.start(tick=tick)

        rate = Fraction(cfg.live.fps).limit_denominator(1001)

        def record(taps: list[Tap], on_frame: Callable[[], None] | None) -> None:
            detector = build_detector(cfg.detector)
            announce_detector(detector, trail, board)
            sink = SegmentSink(out, cfg.record, events, rate=rate, seal=seal_for(cfg, key))
            sink.recover(logged_files(log_path))
            board.sink_state = sink
            opts = OpenOptions(realtime=args.realtime, loop=args.loop)
            live, pace = cfg.live, None
            if spec.kind == "picamera2":  # asked for the rate chosen, so it is chosen first
                pace = _paced(detector, cfg)
                live = live.model_copy(update={"fps": pace.choice.fps})
                pace.camera_rate()
            source = open_source(spec, live, clock, opts, events)
            board.source_state = source
            if pace is None and source.live:
                pace = _paced(detector, cfg, source)
            schedule = Schedule.of(detector, cfg.schedule, pace.sweep if pace else None)
            if pace is not None:
                paces.append(pace)
                board.pace = pace
                _told(pace, trail)
            print(f"veil: recording {spec.label} into {out}", file=sys.stderr)
            if args.duration is not None:
                timer = threading.Timer(args.duration, clock.stop.set)
                timer.daemon = True
                timer.start()
            run(
                source,
                detector,
                Redactor(cfg.redact),
                sink,
                cfg.track,
                on_frame=on_frame,
                observe=trail.observe,
                report=report,
                realtime=Realtime.of(cfg.live) if source.live else None,
                skipped=lambda frame, exc: isinstance(exc, StorageFull),
                stopping=clock.stop,
                taps=taps,
                schedule=schedule,
                pace=pace,
            )

        with trail.stopping() as outcome, _stopped_by_signals(clock):
            try:
                with (
                    open_outputs(outputs, cfg, key_folder, trail, board, rate) as taps,
                    supervised(report, board, cfg.live) as on_frame,
                ):
                    record(taps, on_frame)
                outcome.status = "fail-closed" if report.obscured else "ok"
            finally:
                clock.stop.set()  # ends the --duration timer's purpose, and the status loop's
                events.closed = True
                for pace in paces:
                    pace.check(report, final=True)
                    _told(pace, trail)
                board.stop()
                trail.summary(report, if_new=True)
    print(_summary(report, log_path), file=sys.stderr)
    if report.failures["late"] and report.detect.percentile(50) > cfg.live.max_latency_ms:
        print(
            f"veil: warning: the detector took {report.detect.percentile(50):.0f} ms a frame "
            f"(p50), more than [live] max_latency_ms = {cfg.live.max_latency_ms:g}; frames could "
            "not be vouched for in time and were lost: raise it, or use a faster profile",
            file=sys.stderr,
        )
    if any(pace.cannot for pace in paces):
        return CANNOT_KEEP_UP
    return 3 if report.obscured else 0


def _paced(detector: object, cfg: Config, source: object = None) -> Pace:
    """Measure the detector's passes on a picture the size it will see, and choose what to
    take; says so on stderr. A picamera2 camera (no `source` yet) is sized by its lores stream;
    a source that knows its size and rate (a file) by them, others by the profile's camera."""
    live = cfg.live
    width, height = int(getattr(source, "width", 0) or 0), int(getattr(source, "height", 0) or 0)
    if source is None:
        width, height = live.lores_width, live.lores_width * live.height // live.width
    elif not (width and height):
        width, height = live.width, live.height
    rate = getattr(source, "rate", None)
    if rate:  # the rate the source delivers, which the decimation divides
        fps = min(max(float(rate), 1.0), 240.0)
        live = live.model_copy(update={"fps": fps, "min_fps": min(live.least_fps, fps)})
    pace = Pace(live, cfg.schedule, calibrate(detector, height, width))
    print(f"veil: keeping up: {pace.words()}", file=sys.stderr)
    if not pace.choice.keeps_up:
        print(
            "veil: warning: by its measured passes this device cannot search every frame it "
            f"takes even at [live] min_fps = {live.least_fps:g}; frames will be lost",
            file=sys.stderr,
        )
    return pace


def _told(pace: Pace, trail: AuditTrail) -> None:
    """Each choice the pace made since the last call: into the audit log, and a change on
    stderr (the first was said at start)."""
    while pace.changes:
        choice = pace.changes.popleft()
        trail.schedule(pace, choice)
        if choice.reason == "calibrated":
            continue
        if choice.reason == "cannot-keep-up":
            print(
                f"veil: error: cannot keep up: even at {choice.fps:.3g} frames/s this device "
                "loses more than 2 % of the frames it takes; use a lighter profile (a longer "
                "[schedule] max_sweep, a lower [live] min_fps), a faster device, or an "
                "accelerator",
                file=sys.stderr,
            )
        else:
            said = choice.words(pace.source_fps, pace.whole_every, pace.costs)
            print(f"veil: slowing down to keep up: {said}", file=sys.stderr)


def _summary(report: RunReport, log_path: Path) -> str:
    text = (
        f"veil: {report.frames_in} frame(s) in, "
        + (f"{report.not_taken} not taken (to keep up), " if report.not_taken else "")
        + f"{report.frames_out} recorded, {report.dropped} dropped, "
        f"{report.obscured} fully obscured; "
        + (
            f"latency p50 {report.latency.percentile(50):.0f} ms, "
            f"p99 {report.latency.percentile(99):.0f} ms"
            if report.latency.count
            else "no latency (no frame recorded)"
        )
        + f"; audit log {log_path}"
    )
    if report.failures:
        text += " (" + ", ".join(f"{k} x{v}" for k, v in sorted(report.failures.items())) + ")"
    return text
