"""Outputs appear under their final name only when complete: write to a hidden temporary file in
the same folder, fsync, then rename. A failed run leaves no half-written file behind.

The temporary name carries the writer's process id (`.NAME.veil-PPPPPPPPRRRRRRRR.partial.EXT`:
eight hex digits of pid, eight random), so that what a killed run left can be told from what a
running one is writing (`stale_partials`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from edge.digest import sha256_file
from edge.durable import file_in_the_way, sync_file, sync_folder
from edge.errors import OutputError
from edge.names import NAME_MAX, PARTIAL_MARK, partial_owner

# What a temporary name adds to the stem besides the suffix: ".", the mark, 16 hex digits,
# ".partial" and the seal's ".sealing".
_ADDED = 1 + len(PARTIAL_MARK) + 16 + len(".partial") + len(".sealing")
# Rewrites a finished file into a new one (e.g. adds a C2PA manifest) before it is hashed.
Seal = Callable[[Path, Path], None]


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def stale_partials(folders: Iterable[Path]) -> Iterator[Path]:
    """The partial files in `folders` (not below them) whose writer no longer runs on this
    device."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not made yet, or unreadable: nothing of ours is there
            continue
        for entry in entries:
            path = Path(entry.path)
            owner = partial_owner(path)
            if owner is not None and not is_running(owner) and entry.is_file(follow_symlinks=False):
                yield path


def _temp_stem(stem: str, suffix: str) -> str:
    # A long name must not make the temporary one too long to create: cut the stem instead (the
    # final name is checked before any work, see edge.names).
    budget = NAME_MAX - _ADDED - len(os.fsencode(suffix))
    while len(os.fsencode(stem)) > budget:
        stem = stem[:-1]
    return stem


class AtomicFile:
    def __init__(self, final: Path) -> None:
        self.final = final
        suffix = final.suffix
        stem = _temp_stem(final.stem, suffix)
        tag = f"{os.getpid():08x}{secrets.token_hex(4)}"
        self.temp = final.with_name(f".{stem}{PARTIAL_MARK}{tag}.partial{suffix}")
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
