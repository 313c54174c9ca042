"""Files only their owner may read: the device key, the preview's access token and its TLS key.

Mode 0600 from the first byte, written whole and fsync'd under a temporary name, then linked
into place, so no reader ever sees half a
secret and a racing first run cannot overwrite one already handed out. A file that anyone else
can read, or a folder that anyone else can write (and so swap the file), is refused, with the
chmod that fixes it. Messages name the file, never what is in it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from edge.durable import sync_folder
from edge.errors import AuditError


def check_folder(folder: Path) -> None:
    """Refuse a folder that others could write: they could replace a secret with their own."""
    try:
        mode = folder.stat().st_mode
    except OSError as exc:
        raise AuditError(f"cannot read the key folder {folder}: {exc.strerror or exc}") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise AuditError(
            f"key folder {folder} can be written by others, who could swap its files; "
            f"run `chmod 700 {folder}`"
        )


def make_folder(folder: Path) -> None:
    """The folder, made 0700 if missing; an existing one is checked, not changed."""
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder, 0o700)  # mkdir's mode passes through the umask
    except OSError as exc:
        raise AuditError(f"cannot create the key folder {folder}: {exc.strerror or exc}") from None
    check_folder(folder)


def write_private(path: Path, data: bytes, what: str) -> bool:
    """Create `path` holding `data`, readable by its owner alone. False when the file already
    existed (a first run racing this one won): nothing is ever overwritten."""
    make_folder(path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        sync_folder(path.parent)
    except OSError as exc:
        raise AuditError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)
    return True


def read_private(path: Path, what: str) -> bytes:
    """The file's bytes, once its mode, owner and folder show that nobody else could have read
    or replaced it."""
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditError(
                f"{what} {path} can be read by others (mode {stat.filemode(info.st_mode)}); "
                f"run `chmod 600 {path}`"
            )
        if info.st_uid != os.geteuid():
            raise AuditError(f"{what} {path} belongs to another user (uid {info.st_uid})")
        check_folder(path.parent)
        return path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
