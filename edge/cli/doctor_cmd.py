"""`veil doctor`: one aligned line per check on stdout, a count on stderr; exit 1 on any fail.
Warnings do not fail: many are facts of a machine (no Pi camera on a laptop), not faults."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.parser import Subparsers
from edge.doctor import CHECKS, Context, Result, run_checks


def add_parser(subparsers: Subparsers) -> None:
    doctor = subparsers.add_parser("doctor")
    doctor.add_argument("--config", type=Path, help="the profile `veil run` uses")
    doctor.add_argument("--key-dir", type=Path, help="the device key's folder (as for run)")
    doctor.add_argument(
        "--output-dir", type=Path, help="the folder `veil run` records into (default: recordings)"
    )
    doctor.add_argument("--json", action="store_true", help="print the results as JSON")


def main(args: argparse.Namespace) -> int:
    return doctor_command(args.config, args.key_dir, args.output_dir, as_json=args.json)


def render(results: list[Result]) -> str:
    width = max((len(name) for name, _ in CHECKS), default=0)
    lines = []
    for r in results:
        line = f"{r.level:<5} {r.name:<{width}}  {r.detail}"
        if r.fix and r.level != "ok":
            line += f"; fix: {r.fix}"
        lines.append(line)
    return "\n".join(lines)


def doctor_command(
    config: Path | None, key_dir: Path | None, output_dir: Path | None, *, as_json: bool
) -> int:
    results = run_checks(Context(config=config, key_dir=key_dir, output_dir=output_dir))
    failed = sum(r.level == "fail" for r in results)
    warned = sum(r.level == "warn" for r in results)
    if as_json:
        report = {"checks": [r.as_dict() for r in results], "fail": failed, "warn": warned}
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(results))
    print(f"veil doctor: {failed} fail, {warned} warn", file=sys.stderr)
    return 1 if failed else 0
