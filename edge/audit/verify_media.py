"""`veil audit verify --media DIR`: every logged file in DIR is there with its logged hash, and
everything else in DIR is accounted for.

What a Veil run legitimately leaves in an output folder besides its logged outputs: the audit log
itself, and `veil run`'s status file (`status.json`, and its `.status.json.tmp` while it is
replaced), checked to be one. Anything else is a problem, whatever its name: a copy of an input
renamed `x.webm` or `x.mp4.bak` is still a copy. Hidden partials that a killed run left are named
as such, with how to clear them.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from edge.audit.verdict import LoggedFile, Problem, Verdict
from edge.digest import sha256_file
from edge.errors import UsageError
from edge.names import is_partial, partial_owner, shown
from edge.sinks.atomic import is_running
from edge.sinks.retention import partial_stem

STATUS_NAMES = frozenset({"status.json", ".status.json.tmp"})
_STATUS_MAX = 64 << 10  # a status file is a few KB
_STATUS_KEYS = frozenset({"state", "run", "frames_in", "frames_out"})


def check_media(v: Verdict, media: Path) -> None:
    root = media.resolve()
    log_dir = v.path.parent.resolve()
    expected: dict[Path, LoggedFile] = {}
    deleted: dict[Path, LoggedFile] = {}
    for logged in v.files.values():
        try:
            path = (log_dir / logged.name).resolve()
        except (OSError, ValueError):
            v.problems.append(
                Problem(f"'{shown(logged.name)}': not a usable file name", logged.line)
            )
            continue
        if not path.is_relative_to(root):
            if not logged.deleted:
                v.notes.append(f"{shown(logged.name)}: outside {shown(media)}, not checked")
        elif logged.deleted:
            deleted[path] = logged
        else:
            expected[path] = logged
    for path, logged in expected.items():
        _check_logged(v, path, logged)
    _account_for_the_rest(v, root, set(expected), deleted)


def _check_logged(v: Verdict, path: Path, logged: LoggedFile) -> None:
    name = shown(logged.name)
    where = {"line": logged.line, "seq": logged.seq}
    try:
        size, digest = sha256_file(path)
    except FileNotFoundError:
        v.problems.append(Problem(f"{name} is missing", **where))
        return
    except OSError as exc:
        v.problems.append(Problem(f"{name} cannot be read: {exc.strerror}", **where))
        return
    v.media_checked += 1
    if digest != logged.sha256:
        v.problems.append(
            Problem(
                f"{name}: SHA-256 {digest[:16]}… is not the logged "
                f"{logged.sha256[:16]}… (size {size}, logged {logged.size}): replaced, "
                "edited or re-encoded",
                **where,
            )
        )
    elif logged.c2pa:
        _check_c2pa(v, path, logged)


def _check_c2pa(v: Verdict, path: Path, logged: LoggedFile) -> None:
    from edge.audit import c2pa

    name = shown(logged.name)
    if not c2pa.available():
        v.notes.append(f"{name}: its C2PA manifest was not checked ({c2pa.MISSING})")
        return
    try:
        reason = c2pa.check_file(path, logged.signer)
    except (UsageError, OSError) as exc:
        reason = f"C2PA manifest cannot be checked: {exc}"
    if reason is not None:
        v.problems.append(Problem(f"{name}: {reason}", logged.line, logged.seq))
    else:
        v.c2pa_checked += 1


def _entries(root: Path) -> list[Path]:
    """Every entry under `root` but folders, symbolic links to folders included; links are not
    followed."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        found += [Path(folder, d) for d in dirs if Path(folder, d).is_symlink()]
        found += [Path(folder, f) for f in files]
    return sorted(found)


def _account_for_the_rest(
    v: Verdict, root: Path, expected: set[Path], deleted: dict[Path, LoggedFile]
) -> None:
    log = v.path.resolve()
    originals = {f.source_sha256: f for f in v.files.values() if f.source_sha256}
    for path in _entries(root):
        if path in expected or path == log:
            continue
        name = shown(path.relative_to(root).as_posix())
        try:
            mode = path.lstat().st_mode
        except OSError:  # gone since the folder was listed
            continue
        if stat.S_ISLNK(mode):
            v.problems.append(Problem(f"{name} is a symbolic link the log does not name"))
            continue
        if not stat.S_ISREG(mode):
            v.problems.append(
                Problem(f"{name} is not a regular file, and the log does not name it")
            )
            continue
        if path.name in STATUS_NAMES and _is_status(path):
            continue
        try:
            _, digest = sha256_file(path)
        except OSError:
            digest = ""
        v.problems.append(Problem(_unaccounted(path, name, digest, originals, deleted)))


def _unaccounted(
    path: Path,
    name: str,
    digest: str,
    originals: dict[str, LoggedFile],
    deleted: dict[Path, LoggedFile],
) -> str:
    if digest in originals:
        of = originals[digest]
        return (
            f"{name} is the unredacted original of {shown(of.name)} (seq {of.seq}): never "
            "publish it"
        )
    if path in deleted:
        return f"{name} is still here, though the log says it was deleted (seq {deleted[path].seq})"
    if is_partial(path):
        owner = partial_owner(path)
        if owner is not None and is_running(owner):
            return f"{name} is an output still being written (process {owner}): verify it later"
        if partial_stem(path) is not None:
            fix = "the next `veil run` into this folder recovers it"
        elif owner is None:  # named by an older Veil, which did not say which process wrote it
            fix = "delete it once no Veil run is writing into this folder"
        else:
            fix = "the next `veil redact` into this folder removes it, or delete it"
        return f"{name} is the hidden partial of an output a killed run left unfinished: {fix}"
    return f"{name} is a file the log does not name: added, or written by a run that was not logged"


def _is_status(path: Path) -> bool:
    """Whether `path` is what `veil run` writes as its status: a small JSON object of counts."""
    try:
        if path.stat().st_size > _STATUS_MAX:
            return False
        body = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(body, dict) and _STATUS_KEYS <= body.keys()
