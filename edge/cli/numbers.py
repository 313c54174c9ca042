"""Numbers on the command line, checked as argparse reads them: `float()` takes "nan", "inf" and
"1e999", which compare false with every bound (or pass them all) and then surface later as a
traceback. A bad number is a usage error on one line, like any other bad argument."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


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
