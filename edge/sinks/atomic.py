"""Outputs appear under their final name only when complete: write to a hidden temporary file in
the same folder, fsync, then rename. A failed run leaves no half-written file behind."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from edge.digest import sha256_file
from edge.durable import file_in_the_way, sync_file, sync_folder
from edge.errors import OutputError

_MARK = ".veil-"
# Rewrites a finished file into a new one (e.g. adds a C2PA manifest) before it is hashed.
Seal = Callable[[Path, Path], None]


def is_partial(path: Path) -> bool:
    """A hidden, unfinished output, e.g. of a run killed by a power cut: never an input."""
    return path.name.startswith(".") and _MARK in path.name and ".partial" in path.name


class AtomicFile:
    def __init__(self, final: Path) -> None:
        self.final = final
        suffix = final.suffix
        self.temp = final.with_name(f".{final.stem}{_MARK}{secrets.token_hex(4)}.partial{suffix}")
        blocker = file_in_the_way(final)
        if blocker is not None:
            raise OutputError(f"cannot write {final}: {blocker} is a file, not a folder")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            # Create it now so an unwritable folder fails before any work is done.
            self.temp.touch(exist_ok=False)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from None

    def commit(self, seal: Seal | None = None) -> tuple[int, str]:
        """Publish the file; returns the size and SHA-256 of exactly what was renamed into place.
        `seal`, if given, first rewrites the finished file into a second hidden one."""
        if seal is not None:
            sealed = self.temp.with_suffix(".sealing" + self.temp.suffix)
            try:
                seal(self.temp, sealed)
                sync_file(sealed)  # durable before it replaces the finished, unsealed file
                os.replace(sealed, self.temp)
            except BaseException:
                sealed.unlink(missing_ok=True)
                self.discard()
                raise
        try:
            sync_file(self.temp)
            size, digest = sha256_file(self.temp)
            os.replace(self.temp, self.final)
            sync_folder(self.final.parent)  # the new name, too, must survive a power cut
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {self.final}: {exc.strerror or exc}") from None
        return size, digest

    def discard(self) -> None:
        try:
            self.temp.unlink()
        except FileNotFoundError:
            pass
