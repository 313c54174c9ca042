"""`veil sample OUT.mp4`: a clip of real faces moving, to try Veil on without a camera."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.numbers import CLIP_SECONDS, parse_size
from edge.cli.parser import Subparsers
from edge.errors import UsageError
from edge.sample import write_sample


def add_parser(subparsers: Subparsers) -> None:
    sample = subparsers.add_parser("sample")
    sample.add_argument("output", type=Path, help="MP4 file to write")
    sample.add_argument("--seconds", type=CLIP_SECONDS, default=4.0)
    sample.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")


def main(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() != ".mp4":
        raise UsageError(f"sample output {args.output} must end in .mp4")
    width, height = parse_size(args.size)
    write_sample(args.output, width=width, height=height, seconds=args.seconds)
    print(
        f"wrote {args.output} ({width}x{height}, {args.seconds:g} s, real faces)",
        file=sys.stderr,
    )
    return 0
