"""Progress bars go to stderr, and only when stderr is a terminal."""

from __future__ import annotations

import os
import sys


def terminal_size() -> dict[str, int]:
    """tqdm's `ncols`/`nrows` for stderr's terminal."""
    # A terminal that reports no size (a serial console, a bare pty) would get no bar at all.
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        return {"ncols": 80, "nrows": 24}
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}
