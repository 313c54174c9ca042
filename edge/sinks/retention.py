"""Segment names and how long segments are kept.

A segment is named by the UTC wall time it opened, `YYYYMMDDTHHMMSS.mmmZ.mp4` (`-1`, `-2`, ...
before `.mp4` on a collision), so names sort by time and say when they start without opening them.
Retention only ever considers finished files with such a name; partials (the segment being
written, or one a killed run left) and anything else in the folder are never touched.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge.config import RecordConfig
from edge.digest import sha256_file
from edge.durable import sync_folder
from edge.errors import OutputError

_NAME = re.compile(r"(?P<time>\d{8}T\d{6}\.\d{3})Z(?:-(?P<n>[1-9]\d*))?\.mp4")
_PARTIAL = re.compile(r"\.(?P<stem>.+)\.veil-[0-9a-f]+\.partial\.mp4")
_TIME = "%Y%m%dT%H%M%S.%f"

# (path, sha256, reason): a segment was deleted.
OnDelete = Callable[[Path, str, str], None]


@dataclass(frozen=True)
class Segment:
    path: Path
    start: datetime  # UTC, from the name
    n: int  # collision suffix; 0 for none

    @property
    def order(self) -> tuple[datetime, int]:
        return self.start, self.n


def segment_stem(at: datetime) -> str:
    """The name (without `.mp4`) of a segment opened at `at`."""
    at = at.astimezone(timezone.utc)
    return f"{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}Z"


def parse_name(name: str) -> Segment | None:
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    try:
        start = datetime.strptime(match["time"], _TIME).replace(tzinfo=timezone.utc)
    except ValueError:
        return None  # e.g. month 13: looks like a segment, is not one of ours
    return Segment(Path(name), start, int(match["n"] or 0))


def unique_path(folder: Path, stem: str, taken: Collection[Path] = ()) -> Path:
    """`folder/stem.mp4`, or the first free `stem-N.mp4`; `taken`: names promised to segments
    not yet renamed into place, not free either."""
    path = folder / f"{stem}.mp4"
    n = 0
    while path in taken or path.exists():
        n += 1
        path = folder / f"{stem}-{n}.mp4"
    return path


def partial_stem(partial: Path) -> str | None:
    """The segment name (without `.mp4`) a hidden partial was being written under, if it is one
    of ours: `.20261201T193605.123Z.veil-1a2b3c4d.partial.mp4` -> `20261201T193605.123Z`."""
    match = _PARTIAL.fullmatch(partial.name)
    if match is None or parse_name(match["stem"] + ".mp4") is None:
        return None
    return match["stem"]


def finished_segments(folder: Path) -> list[Segment]:
    """The folder's finished segments, oldest first."""
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OutputError(f"cannot list {folder}: {exc.strerror or exc}") from None
    found = []
    for entry in entries:
        seg = parse_name(entry.name)
        if seg is not None and entry.is_file() and not entry.is_symlink():
            found.append(Segment(entry, seg.start, seg.n))
    return sorted(found, key=lambda s: s.order)


def sweep(
    folder: Path,
    cfg: RecordConfig,
    on_delete: OnDelete,
    *,
    min_free: int | None = None,
    keep: Path | None = None,
    now: datetime | None = None,
) -> int:
    """Delete segments, oldest first: those older than `max_age_hours` (by their start: no frame
    outlives the limit), then while they total more than `max_bytes`, then while the disk has
    less than `min_free` bytes free (default `cfg.min_free_bytes`). `keep` (the newest footage)
    is exempt from the two size rules, never from age. Returns the number deleted."""
    segments = finished_segments(folder)
    deleted = 0
    if cfg.max_age_hours > 0:
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(hours=cfg.max_age_hours)
        for seg in [s for s in segments if s.start < cutoff]:
            deleted += _delete(seg, "age", on_delete)
            segments.remove(seg)
    sizeable = [s for s in segments if s.path != keep]
    if cfg.max_bytes > 0:
        sizes = {s.path: _size(s.path) for s in segments}
        total = sum(sizes.values())
        while total > cfg.max_bytes and sizeable:
            seg = sizeable.pop(0)
            deleted += _delete(seg, "disk-budget", on_delete)
            total -= sizes[seg.path]
    floor = cfg.min_free_bytes if min_free is None else min_free
    if floor > 0:
        while sizeable and free_bytes(folder) < floor:
            deleted += _delete(sizeable.pop(0), "free-space", on_delete)
    return deleted


def free_bytes(folder: Path) -> int:
    """Free space where `folder` is (or would be created)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError as exc:
        raise OutputError(f"cannot read free space of {folder}: {exc.strerror or exc}") from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _delete(seg: Segment, reason: str, on_delete: OnDelete) -> int:
    """Hash, unlink and report one segment; 0 if it was already gone (deleted by someone else:
    nothing to report, since this sweep deleted nothing)."""
    try:
        # Hashed first, so that the audit log can tie the deletion to the segment it published.
        _, digest = sha256_file(seg.path)
        seg.path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise OutputError(f"cannot delete {seg.path}: {exc.strerror or exc}") from None
    on_delete(seg.path, digest, reason)  # it is gone: report it even if the sync below fails
    try:
        sync_folder(seg.path.parent)
    except OSError as exc:
        raise OutputError(f"cannot sync {seg.path.parent}: {exc.strerror or exc}") from None
    return 1
