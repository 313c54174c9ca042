"""Third-party telemetry, switched off before any library that has it is loaded.

onnxruntime's official Linux wheels (1.32 here) carry Microsoft's 1DS telemetry. Merely importing
onnxruntime writes a persistent device id and an event store under
`${XDG_CACHE_HOME:-~/.cache}/Microsoft/DeveloperTools/.onnxruntime/`, and a few seconds later
the process looks up Microsoft's collector host to upload to it. `ORT_DISABLE_TELEMETRY=1`,
read once when onnxruntime initialises (its import), prevents the uploader, the events and the
device id; `disable_telemetry_events()` after the import does not: it leaves the files and the
lookup. So the variable is set by `edge/__init__.py`, before any module of Veil's can import
onnxruntime, and by the systemd unit for the whole service.

The other native libraries Veil loads (LiteRT, OpenCV, PyAV/FFmpeg, c2pa) open no internet
socket and write nothing under HOME in the runs tests/system/test_telemetry.py traces (redact
with both detectors and C2PA signing, verify, eval, a live run); c2pa's verification has its
fetching switched off where it is used (edge/audit/c2pa.py).
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

ORT_SWITCH = "ORT_DISABLE_TELEMETRY"
# Where onnxruntime keeps its device id and event store, under the user's cache folder.
ORT_STORE = Path("Microsoft", "DeveloperTools", ".onnxruntime")


_late = False  # onnxruntime was imported before the switch: its telemetry had started


def switch_off() -> None:
    """Set onnxruntime's switch for this process and every child it starts. Overrides a `0`: no
    setting turns telemetry on. When something imported onnxruntime before Veil, its telemetry
    has started already; the events are then switched off, the most that is left to do."""
    global _late
    os.environ[ORT_SWITCH] = "1"
    ort = sys.modules.get("onnxruntime")
    if ort is not None:
        _late = True
        if hasattr(ort, "disable_telemetry_events"):
            ort.disable_telemetry_events()


def is_off() -> bool:
    """Whether onnxruntime in this process started (or will start) with telemetry off."""
    return os.environ.get(ORT_SWITCH) == "1" and not _late


def store_folders() -> list[Path]:
    """Where onnxruntime, started in this environment, keeps its device id: under
    `$XDG_CACHE_HOME`, and under `$HOME/.cache` (used when XDG_CACHE_HOME is unset), or with no
    HOME the account's home folder from the password database, as onnxruntime does."""
    bases: list[Path] = []
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        bases.append(Path(xdg))
    if home := os.environ.get("HOME"):
        bases.append(Path(home, ".cache"))
    else:
        try:
            bases.append(Path(pwd.getpwuid(os.getuid()).pw_dir, ".cache"))
        except KeyError:  # a uid without an account (a container's arbitrary user)
            pass
    return list(dict.fromkeys(base / ORT_STORE for base in bases))


def leftovers() -> list[Path]:
    """The store folders that exist: a device id written by an earlier run, or by another
    program that uses onnxruntime with telemetry on."""
    return [folder for folder in store_folders() if folder.exists()]
