"""`veil check-config FILE` reports every problem of a profile with its line (exit 2), before any
camera is opened."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.capture.urls import masked
from edge.cli.parser import Subparsers
from edge.config import config_problems


def add_parser(subparsers: Subparsers) -> None:
    check = subparsers.add_parser("check-config")
    check.add_argument("file", type=Path)


def main(args: argparse.Namespace) -> int:
    return check_config_command(args.file)


def check_config_command(path: Path) -> int:
    problems = config_problems(path)
    for line in problems:
        # A credential put in the wrong setting must not be echoed with its error.
        print(f"veil: error: {masked(line)}", file=sys.stderr)
    if problems:
        return 2
    print(f"{path}: OK", file=sys.stderr)
    return 0
