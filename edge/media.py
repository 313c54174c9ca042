"""What an input is, and where its redacted copy goes. Originals are never overwritten."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.errors import UsageError
from edge.names import is_partial, name_problem, shown

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
_NAMED = 5  # skipped files named in the one line that reports them; the rest are counted
Kind = Literal["video", "image"]


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path
    kind: Kind
    refused: str | None = None  # why a folder run skips this input (its name), or None


def media_kind(path: Path) -> Kind | None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def _default_name(src: Path, kind: Kind) -> str:
    return f"{src.stem}.redacted{'.mp4' if kind == 'video' else src.suffix}"


def _check_output(src: Path, dst: Path, kind: Kind, overwrite: bool) -> None:
    if dst.resolve() == src.resolve():
        raise UsageError(f"output {dst} is the input; Veil never overwrites an original")
    if kind == "video" and dst.suffix.lower() != ".mp4":
        raise UsageError(f"output {dst}: video is written as H.264 MP4, name it .mp4")
    same_format = {".jpg": ".jpeg", ".jpeg": ".jpg"}.get(src.suffix.lower())
    if kind == "image" and dst.suffix.lower() not in {src.suffix.lower(), same_format}:
        raise UsageError(f"output {dst}: an image keeps its format ({src.suffix})")
    if dst.exists() and not overwrite:
        raise UsageError(f"output {dst} exists; pass --overwrite to replace it")


def plan(src: Path, dst: Path | None, *, overwrite: bool = False) -> list[Job]:
    """The jobs for one INPUT argument: a file, or a folder whose tree is mirrored."""
    problem = name_problem(src)  # before it is looked up: a name too long fails even that
    if problem is not None:
        raise UsageError(f"input {problem}: rename it to redact it")
    if not src.exists():
        raise UsageError(f"input not found: {src}")
    if src.is_dir():
        return _plan_folder(src, dst, overwrite)
    kind = media_kind(src)
    if kind is None:
        known = ", ".join(sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES))
        raise UsageError(f"{src}: unsupported file type {src.suffix or '(none)'} (known: {known})")
    target = dst if dst is not None else src.with_name(_default_name(src, kind))
    _check_name(target)  # before it is looked up: a name too long fails even that
    # A folder: one that exists, or a name without an extension (made when the output is
    # written), as for a folder input; `-o out/x.mp4` names the file itself.
    if target.is_dir() or (dst is not None and not dst.suffix and not dst.exists()):
        target = target / _default_name(src, kind)
        _check_name(target)
    _check_output(src, target, kind, overwrite)
    return [Job(src, target, kind)]


def _check_name(output: Path) -> None:
    problem = name_problem(output)
    if problem is not None:
        raise UsageError(f"output {problem}: name the output with -o")


def output_root(src: Path, jobs: list[Job]) -> Path:
    """The folder a run writes into: a folder input's mirror, or a file's output folder."""
    if src.is_dir():
        return jobs[0].dst.parents[len(jobs[0].src.relative_to(src).parts) - 1]
    return jobs[0].dst.parent


def _plan_folder(src: Path, dst: Path | None, overwrite: bool) -> list[Job]:
    out_root = dst if dst is not None else src.with_name(f"{src.name}.redacted")
    if (problem := name_problem(out_root)) is not None:
        raise UsageError(f"output folder {problem}")
    src_r, out_r = src.resolve(), out_root.resolve()
    if out_r == src_r or out_r.is_relative_to(src_r):
        raise UsageError(f"output folder {out_root} must not be inside the input folder {src}")
    if out_root.exists() and not out_root.is_dir():
        raise UsageError(f"output {out_root} is a file; a folder input needs a folder output")
    jobs = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        kind = media_kind(path)
        if kind is None or is_partial(path):
            continue
        rel = path.relative_to(src)
        target = out_root / rel.parent / (rel.stem + (".mp4" if kind == "video" else rel.suffix))
        problem = name_problem(path) or name_problem(target)
        if problem is not None:
            refused = f"input {problem}: skipped; rename it to redact it"
            jobs.append(Job(path, target, kind, refused))
            continue
        _check_output(path, target, kind, overwrite)
        jobs.append(Job(path, target, kind))
    if not jobs:
        raise UsageError(f"{src}: no video or image files found")
    return jobs


def not_media(folder: Path, own: Collection[str] = ()) -> list[Path]:
    """The files a folder run leaves out because they are not media, for the one line that says
    so. Hidden files and whatever lies in a hidden folder (a `.git`, a camera's `.thumbnails`,
    partial outputs) are not news to anyone, nor are Veil's own files, named in `own` (the audit
    log and status file of an earlier run, whose recordings are being redacted)."""
    return sorted(
        path
        for path in folder.rglob("*")
        if media_kind(path) is None
        and path.name not in own
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )


def skipped_line(folder: Path, skipped: list[Path]) -> str:
    """One line for all of `skipped`, however many: a folder of 10,000 files is not a flood."""
    names = [shown(path.relative_to(folder).as_posix()) for path in skipped[:_NAMED]]
    more = len(skipped) - len(names)
    files = (
        "1 file that is not media"
        if len(skipped) == 1
        else f"{len(skipped)} files that are not media"
    )
    return f"veil: skipped {files}: {', '.join(names)}" + (f", and {more} more" if more else "")
