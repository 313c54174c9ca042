"""Numbers on the command line, checked as argparse reads them: `float()` takes "nan", "inf" and
"1e999", which compare false with every bound (or pass them all) and then surface later as a
traceback. A bad number is a usage error on one line, like any other bad argument; so is a bad
WIDTHxHEIGHT size."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from edge.errors import UsageError


def seconds(least: float, most: float) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds from `least` to `most`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not (math.isfinite(value) and least <= value <= most):
            raise argparse.ArgumentTypeError(
                f"{text!r}: must be a number of seconds from {least:g} to {most:g}"
            )
        return value

    return parse


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size {text!r} is not WIDTHxHEIGHT") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise UsageError(f"size {text!r} is out of range")
    return w, h


# A generated clip (`veil sample`, `veil bench`): at least a few frames, at most an hour.
CLIP_SECONDS = seconds(0.1, 3600.0)
