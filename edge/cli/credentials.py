"""Credentials given to `veil run` where others can read them: on the command line (every user
of the device sees a process's arguments, in `ps` and /proc/PID/cmdline), or in a profile that
anyone may read. Veil says so in one line, and masks its own arguments in place as soon as it
has read them: the kernel shows the memory the arguments were passed in, which the process may
overwrite. Until then (the first fraction of a second) they were visible; the profile, readable
by Veil alone, is the place for them."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.capture.urls import has_credentials, masked

_STAT = Path("/proc/self/stat")
_MEM = Path("/proc/self/mem")


def guard_arguments(given: dict[str, str | None]) -> list[str]:
    """Mask each given option value (by option name) that holds a credential in this process's
    arguments, now; returns the names of those options, for `warn_arguments` once the command
    line is known to be good (a bad one gets its one error line and nothing else)."""
    held = {name: value for name, value in given.items() if value and has_credentials(value)}
    if held:
        mask_arguments(list(held.values()))
    return list(held)


def warn_arguments(names: list[str]) -> None:
    if names:
        verb = "holds" if len(names) == 1 else "hold"
        print(
            f"veil: warning: {' and '.join(names)} {verb} credentials, which any user of this "
            "device can read from the command line; put them in the profile, readable by Veil "
            "alone",
            file=sys.stderr,
        )


def warn_if_readable(profile: Path | None, values: Sequence[str]) -> None:
    """One line when a profile that holds credentials can be read by other users."""
    if profile is None or not any(has_credentials(v) for v in values):
        return
    try:
        mode = profile.stat().st_mode
    except OSError:
        return
    if mode & stat.S_IROTH:
        print(
            f"veil: warning: {profile} holds credentials and any user of this device can read "
            f"it; run `chmod o-r {profile}`",
            file=sys.stderr,
        )


def mask_arguments(values: Sequence[str]) -> bool:
    """Overwrite each of `values` where it stands in this process's original arguments with
    its masked form (`masked`), padded to the same length. False where the system allows no such
    thing (no /proc, or /proc/self/mem refused)."""
    area = _argument_area()
    if area is None:
        return False
    start, end = area
    try:
        with _MEM.open("r+b", buffering=0) as mem:
            mem.seek(start)
            data = mem.read(end - start)
            hidden = data
            for value in values:
                raw = os.fsencode(value)
                hidden = hidden.replace(
                    raw, os.fsencode(masked(value))[: len(raw)].ljust(len(raw), b"*")
                )
            if hidden != data:
                mem.seek(start)
                mem.write(hidden)
    except (OSError, OverflowError, ValueError):
        return False
    return True


def _argument_area() -> tuple[int, int] | None:
    """Where the kernel's copy of the arguments lies (/proc/self/stat's arg_start, arg_end)."""
    try:
        text = _STAT.read_text(encoding="ascii")
        fields = text[text.rindex(")") + 2 :].split()  # after the name, which may hold spaces
        return int(fields[45]), int(fields[46])  # fields 48 and 49 of the whole line
    except (OSError, ValueError, IndexError):
        return None
