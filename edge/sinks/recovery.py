"""What a killed run leaves in a recording folder, dealt with before the next run records: no
segment is ever left there unlogged.

- A partial segment (a hidden `.NAME.veil-….partial.mp4`): cut back to its last whole fragment
  that decodes and published under its own name (`segment_closed`, recovered), or, with nothing
  playable in it, removed (`segment_discarded`, "partial").
- A finished segment the audit log does not name: the run was killed between renaming it into
  place and logging it. It is whole (renamed only after its fsync), so it is decoded, hashed as
  it is and reported (`segment_closed`, recovered). One that does not decode is left alone, for
  `veil audit verify --media` to name.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import av

from edge.digest import sha256_file
from edge.durable import sync_folder
from edge.errors import OutputError
from edge.names import is_partial
from edge.sinks import fmp4, retention
from edge.sinks.atomic import AtomicFile, Seal
from edge.sinks.base import Published, RecordingEvents


def recover_partials(
    folder: Path, events: RecordingEvents, seal: Seal | None, busy: Path | None = None
) -> set[Path]:
    """Deal with every partial segment in `folder` (but `busy`); returns the resolved paths of
    those published."""
    published: set[Path] = set()
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as exc:
        raise OutputError(f"cannot list {folder}: {exc.strerror or exc}") from None
    for path in entries:
        if is_partial(path) and path.suffix == ".mp4" and path != busy and path.is_file():
            out = _recover_one(folder, path, events, seal)
            if out is not None:
                published.add(out.resolve())
    return published


def _recover_one(
    folder: Path, path: Path, events: RecordingEvents, seal: Seal | None
) -> Path | None:
    stem = retention.partial_stem(path)  # None: e.g. a seal's scratch copy, never whole
    salvaged = None
    if stem is not None:
        try:
            salvaged = fmp4.salvage(path)
        except OSError:
            salvaged = None
    error: BaseException | None = None
    if stem is not None and salvaged is not None and salvaged.frames > 0:
        try:
            target = AtomicFile(retention.unique_path(folder, stem))
            os.replace(path, target.temp)  # commit() then hashes and renames exactly that
            size, digest = target.commit(seal)
        except Exception as exc:  # a seal may raise anything
            error = exc
        else:
            out = Published(
                target.final, size, digest, salvaged.frames, salvaged.first_ts, salvaged.last_ts
            )
            events.segment_closed(out, recovered=True)
            return target.final
    try:
        path.unlink(missing_ok=True)
        sync_folder(folder)
    except OSError as exc:
        raise OutputError(f"cannot remove {path}: {exc.strerror or exc}") from None
    lost = salvaged.frames if salvaged is not None else 0  # > 0 only if publishing failed
    events.segment_discarded(path, lost, "partial", error)
    return None


def adopt_unlogged(folder: Path, events: RecordingEvents, logged: Collection[Path]) -> None:
    known = set(logged)
    for seg in retention.finished_segments(folder):
        if seg.path.resolve() in known:
            continue
        try:
            times = _frame_times(seg.path)
            size, digest = sha256_file(seg.path)
        except (OSError, av.FFmpegError):
            continue  # does not decode as it stands: left for `verify --media` to name
        if not times:
            continue
        out = Published(seg.path, size, digest, len(times), times[0], times[-1])
        events.segment_closed(out, recovered=True)


def _frame_times(path: Path) -> list[float]:
    """Every frame's time, decoding the whole file (as a player would)."""
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0) if f.time is not None]
