"""`veil bench`: the speed of decode, encode and the whole pipeline on a generated clip, or with
`--live` each live profile as `veil run` in real time (edge.bench)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.numbers import CLIP_SECONDS, parse_size
from edge.cli.parser import Subparsers
from edge.errors import UsageError


def add_parser(subparsers: Subparsers) -> None:
    bench = subparsers.add_parser("bench")
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


def main(args: argparse.Namespace) -> int:
    # Each bench imported only when asked for: the recorded one loads onnxruntime in this
    # process, the live one leaves that to its `veil run` children.
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
