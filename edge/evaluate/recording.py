"""Score what a live run recorded against the annotated clip it was played from.

`veil run --source file:CLIP` keeps each frame's source time, so a recorded frame at time t is
source frame round(t × fps) (modulo the clip's length when it was looped). Each recorded frame
is scored with the same face-detail measure as `veil eval`, against the decoded source frame.
A recording of a resized copy of the clip is scaled back to the annotations' size first. A
dropped frame is not a leak, but it is counted; a source frame recorded twice in one pass, or a
recorded time that is no source frame, is an error of the loop and is counted too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge.capture import VideoFileSource
from edge.errors import MediaError, UsageError
from edge.evaluate.evalset import VideoItem, load_evalset
from edge.evaluate.metrics import longest_run
from edge.evaluate.overredaction import CellCount, over_redaction
from edge.evaluate.protection import is_protected
from edge.evaluate.recording_groups import GroupTally, render_groups
from edge.frames import Pixels
from edge.names import is_partial


@dataclass
class RecordingScore:
    video: str
    recorded: int = 0  # frames in the recording
    source_frames: int = 0  # source frames the run was given (passes × length, up to the last)
    duplicates: int = 0  # source frames recorded more than once in one pass
    strays: int = 0  # recorded times that fall between source frames
    face_frames: int = 0  # annotated faces on recorded frames
    protected: int = 0
    leaked_frames: int = 0
    longest_leak: int = 0
    # Textured picture away from faces destroyed (`edge.evaluate.overredaction`), against the
    # decoded source frame: the recording's compression counts too, so this is an upper bound.
    cells: CellCount = field(default_factory=CellCount)
    # A labelled clip's (`edge.evaluate.group_clip`): face-frames per group.
    groups: GroupTally | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["groups"] = None if self.groups is None else self.groups.as_dict()
        out["cells"] = {"textured": self.cells.textured, "destroyed": self.cells.destroyed}
        out["over_redaction"] = self.cells.share
        out["protected_share"] = self.protected / self.face_frames if self.face_frames else None
        out["dropped"] = self.source_frames - self.recorded
        return out


def _recorded(folder: Path) -> Iterator[tuple[float, Pixels]]:
    """Every frame of every closed segment in `folder`, in time order, with its time."""
    segments = sorted(p for p in folder.glob("*.mp4") if not is_partial(p))
    if not segments:
        raise UsageError(f"{folder}: no recorded segments")
    for path in segments:
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    yield float(frame.time), np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
        except av.FFmpegError as exc:
            raise MediaError(f"{path}: does not decode ({exc})") from None


def score_recording(set_dir: Path, recording: Path, video: str | None = None) -> RecordingScore:
    evalset = load_evalset(set_dir)
    items = [v for v in evalset.videos if video is None or v.file == video]
    if len(items) != 1:
        names = ", ".join(v.file for v in evalset.videos)
        raise UsageError(f"{set_dir}: name one video of {names} (--video)")
    item: VideoItem = items[0]
    annotated = {f.index: f.faces for f in item.frames}
    ignored = {f.index: f.ignore for f in item.frames}
    subjects = _subjects(item)
    score = RecordingScore(item.file)
    if item.subjects is not None:
        score.groups = GroupTally(item.subjects)
    leaks: list[bool] = []
    source: VideoFileSource | None = None
    frames: Iterator[Any] = iter(())
    at = -1  # index of the source frame last decoded
    last_k = -1
    for t, pixels in _recorded(recording):
        k = round(t * item.fps)
        if abs(k / item.fps - t) > 0.25 / item.fps:
            score.strays += 1
            continue
        if k <= last_k:
            score.duplicates += 1
            continue
        last_k = k
        index = k % item.num_frames
        if source is None or index <= at:  # first frame, or a new pass over a looped clip
            if source is not None:
                source.close()
            source = VideoFileSource(set_dir / item.file)
            frames, at = source.frames(), -1
        raw = None
        while at < index:
            raw = next(frames, None)
            if raw is None:
                raise MediaError(f"{item.file}: recorded frame {k} is past its end")
            at = raw.index
        assert raw is not None
        if pixels.shape != raw.pixels.shape:
            # A recording made from an upscaled copy of the clip (e.g. 1080p from 720p): scored
            # at the annotations' size.
            size = (raw.pixels.shape[1], raw.pixels.shape[0])
            pixels = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)
        score.recorded += 1
        score.source_frames = k + 1
        leaked = False
        for n, box in enumerate(annotated.get(index, [])):
            score.face_frames += 1
            protected = is_protected(raw.pixels, pixels, box)
            score.protected += protected
            leaked = leaked or not protected
            if score.groups is not None:
                score.groups.add(subjects[index][n], box, protected)
        leaks.append(leaked)
        if item.exhaustive and index in annotated:
            keep_out = [*annotated[index], *ignored.get(index, [])]
            score.cells += over_redaction(raw.pixels, pixels, keep_out)
    if source is not None:
        source.close()
    score.leaked_frames = sum(leaks)
    score.longest_leak = longest_run(leaks)
    return score


def _subjects(item: VideoItem) -> dict[int, list[str]]:
    """Each frame's subject ids (a labelled clip's), checked against its faces and labels."""
    if item.subjects is None:
        return {}
    out: dict[int, list[str]] = {}
    for frame in item.frames:
        ids = frame.subjects or []
        if len(ids) != len(frame.faces) or any(s not in item.subjects for s in ids):
            raise UsageError(
                f"{item.file}: frame {frame.index}'s subjects do not match its faces and the "
                "clip's subjects"
            )
        out[frame.index] = ids
    return out


def render_score(score: RecordingScore) -> str:
    d = score.as_dict()
    share = "-" if d["protected_share"] is None else f"{d['protected_share']:.1%}"
    return "\n".join(
        [
            f"recording of {score.video}: {score.recorded} frame(s) recorded of "
            f"{score.source_frames} source frame(s) ({d['dropped']} dropped)",
            f"face-frames protected: {score.protected} of {score.face_frames} ({share}); "
            f"frames with a leak: {score.leaked_frames}, longest run {score.longest_leak}",
            f"loop errors: {score.duplicates} duplicate(s), {score.strays} stray time(s)",
            "textured picture away from faces destroyed: "
            + ("-" if score.cells.share is None else f"{score.cells.share:.1%}")
            + " (against the source: the recording's compression counts too)",
            *([] if score.groups is None else render_groups(score.groups.as_dict())),
        ]
    )
