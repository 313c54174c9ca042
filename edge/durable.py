"""fsync of a folder: a file's new name (created or renamed) survives a power cut only then."""

from __future__ import annotations

import os
from pathlib import Path


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
