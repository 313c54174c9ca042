"""Writing files that last: fsync of a folder (a file's new name survives a power cut only
then), and the check that a path can be created at all."""

from __future__ import annotations

import os
from pathlib import Path


def sync_file(path: Path) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    sync_file(folder)


def file_in_the_way(path: Path) -> Path | None:
    """An existing file where one of `path`'s folders would have to be, if any."""
    return next((p for p in path.parents if p.exists() and not p.is_dir()), None)
