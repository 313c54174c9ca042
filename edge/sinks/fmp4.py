"""Fragmented MP4 on disk: walking its boxes, and cutting a file back to its whole fragments.
(Writing one, fragment by fragment, is edge.sinks.encoder's.)

A segment is `ftyp`, `moov` (no samples: `empty_moov`), then one `moof`+`mdat` pair per fragment.
A run killed mid-write, or a disk that filled, leaves a file that ends inside a fragment. Cut
after its last whole fragment, the file plays again: every fragment starts on a keyframe and
carries its own decode time (`tfdt`), so nothing before the cut depends on what came after it.

"Whole" is checked twice: structurally (every box complete, and the sample sizes `moof` lists
fill its `mdat` exactly) and by decoding (every sample a fragment lists comes out as a frame), since
a power cut can leave a fragment whose boxes are intact but whose bytes never reached the disk.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av

# Boxes inside `moov` that hold other boxes: enough to find an edit list (`moov/trak/edts`).
_CONTAINERS = {b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl", b"mvex"}


@dataclass(frozen=True)
class Fragment:
    offset: int  # of its `moof`
    end: int  # just past its `mdat`
    samples: int
    start: int | None  # decode time of its first sample (`tfdt`), in the track's time scale


@dataclass(frozen=True)
class Layout:
    size: int  # of the file as found
    header_end: int  # just past `moov`; 0 if the file has no whole `ftyp` + `moov`
    fragments: tuple[Fragment, ...]  # the whole ones, in order
    edit_list: bool  # `moov` holds an edit list (which would shift the timeline)

    @property
    def whole_end(self) -> int:
        """Length of the file cut after its last whole fragment (just the header if none)."""
        return self.fragments[-1].end if self.fragments else self.header_end


@dataclass(frozen=True)
class Salvaged:
    """What was left of a file cut back to its whole, decodable fragments."""

    frames: int
    first_ts: float | None  # seconds on the file's own timeline
    last_ts: float | None


def scan(path: Path) -> Layout:
    """The file's whole fragments (reads box headers and `moof`s, seeks over media data)."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        first = _box_at(f, 0, size)
        if first is None or first[0] != b"ftyp":
            return Layout(size, 0, (), False)
        pos, header_end, edit_list = first[2], 0, False
        # Everything up to and including `moov`: the header a player needs before any fragment.
        while (box := _box_at(f, pos, size)) is not None and box[0] not in (b"moof", b"mdat"):
            kind, start, end, header = box
            if kind == b"moov":
                f.seek(start + header)
                edit_list = _holds(f.read(end - start - header), b"edts")
                header_end = end
                break
            pos = end
        if not header_end:
            return Layout(size, 0, (), False)
        fragments: list[Fragment] = []
        pos = header_end
        while (fragment := _fragment_at(f, pos, size)) is not None:
            fragments.append(fragment)
            pos = fragment.end
        return Layout(size, header_end, tuple(fragments), edit_list)


def cut(path: Path, length: int) -> None:
    """Shorten the file to `length` bytes, durably (a later power cut keeps the cut)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


def salvage(path: Path) -> Salvaged:
    """Cut the file after its last whole fragment that decodes completely; how many frames it
    then holds. frames == 0: nothing playable (the file is left for the caller to remove).
    Raises OSError if the file cannot be read or cut."""
    layout = scan(path)
    if not layout.fragments:
        return Salvaged(0, None, None)
    if layout.size != layout.whole_end:
        cut(path, layout.whole_end)  # the demuxer must not read the torn tail
    kept, first, last = _decodable(path, layout.fragments)
    if not kept:
        return Salvaged(0, None, None)
    end = layout.fragments[kept - 1].end
    if end != layout.whole_end:
        cut(path, end)
    frames = sum(f.samples for f in layout.fragments[:kept])
    return Salvaged(frames, first, last)


def _decodable(
    path: Path, fragments: tuple[Fragment, ...]
) -> tuple[int, float | None, float | None]:
    """How many leading fragments decode to every frame they list, and the first and last frame
    time (seconds) among those."""
    starts = [f.start if f.start is not None else -1 for f in fragments]
    if any(s < 0 for s in starts) or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
        return 0, None, None  # no usable decode times: frames cannot be told apart by fragment
    counts = [0] * len(fragments)
    times: list[list[Fraction]] = [[] for _ in fragments]
    try:
        container: Any = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError):
        return 0, None, None
    try:
        if not container.streams.video:
            return 0, None, None
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = Fraction(stream.time_base)
        for packet in container.demux(stream):
            if packet.is_corrupt:
                break
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                k = bisect.bisect_right(starts, frame.pts) - 1
                if k >= 0:
                    counts[k] += 1
                    times[k].append(frame.pts * time_base)
    except (av.FFmpegError, OSError, ValueError):
        pass  # the fragments that decoded before the error still count
    finally:
        container.close()
    kept = 0
    while kept < len(fragments) and counts[kept] == fragments[kept].samples:
        kept += 1
    if not kept:
        return 0, None, None
    return kept, float(min(times[0])), float(max(times[kept - 1]))


def _box_at(f: BinaryIO, pos: int, size: int) -> tuple[bytes, int, int, int] | None:
    """(type, start, end, header length) of the box at `pos` if it lies whole in the file."""
    if pos + 8 > size:
        return None
    f.seek(pos)
    length, kind = struct.unpack(">I4s", f.read(8))
    header = 8
    if length == 1:
        if pos + 16 > size:
            return None
        (length,) = struct.unpack(">Q", f.read(8))
        header = 16
    # length 0 means "up to the end of the file": a box still being written, never whole.
    if length < header or pos + length > size:
        return None
    return kind, pos, pos + length, header


def _fragment_at(f: BinaryIO, pos: int, size: int) -> Fragment | None:
    moof = _box_at(f, pos, size)
    if moof is None or moof[0] != b"moof":
        return None
    mdat = _box_at(f, moof[2], size)
    if mdat is None or mdat[0] != b"mdat":
        return None
    f.seek(pos + moof[3])
    parsed = _parse_moof(f.read(moof[2] - pos - moof[3]), pos)
    if parsed is None:
        return None
    samples, start, ranges = parsed
    payload_start, payload_end = mdat[1] + mdat[3], mdat[2]
    # The samples must fill the mdat exactly: a fragment written with a hole in it (a short
    # write on a full disk) would otherwise pass as whole and decode garbage.
    inside = all(payload_start <= a and b <= payload_end for a, b in ranges)
    if not inside or sum(b - a for a, b in ranges) != payload_end - payload_start:
        return None
    return Fragment(pos, mdat[2], samples, start)


def _children(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each box in `data`; stops at the first box that does not fit."""
    out: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1 and pos + 16 <= len(data):
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        if length < header or pos + length > len(data):
            break
        out.append((kind, data[pos + header : pos + length]))
        pos += length
    return out


def _holds(data: bytes, wanted: bytes) -> bool:
    return any(
        kind == wanted or (kind in _CONTAINERS and _holds(body, wanted))
        for kind, body in _children(data)
    )


def _parse_moof(
    data: bytes, moof_offset: int
) -> tuple[int, int | None, list[tuple[int, int]]] | None:
    """Sample count, first decode time and the byte ranges of the samples a `moof` lists."""
    samples, start = 0, None
    ranges: list[tuple[int, int]] = []
    trafs = [body for kind, body in _children(data) if kind == b"traf"]
    if not trafs:
        return None
    try:
        for traf in trafs:
            boxes = _children(traf)
            tfhd = next((body for kind, body in boxes if kind == b"tfhd"), None)
            if tfhd is None:
                return None
            base, default_size = _parse_tfhd(tfhd, moof_offset)
            for kind, body in boxes:
                if kind == b"tfdt" and start is None:
                    start = struct.unpack_from(">Q" if body[0] == 1 else ">I", body, 4)[0]
                elif kind == b"trun":
                    count, offset, length = _parse_trun(body, default_size)
                    samples += count
                    ranges.append((base + offset, base + offset + length))
    except (struct.error, IndexError):
        return None  # a box too short for the fields its flags announce
    return samples, start, ranges


def _parse_tfhd(body: bytes, moof_offset: int) -> tuple[int, int | None]:
    """The base offset sample data counts from, and the default sample size if given."""
    flags = int.from_bytes(body[1:4], "big")
    pos = 8  # version, flags, track_ID
    # Without an explicit base, offsets count from the moof: FFmpeg's default_base_moof sets
    # flag 0x020000 to say so, and it is also the ISO rule for a track's first (here: only) traf.
    base = moof_offset
    if flags & 0x01:
        (base,) = struct.unpack_from(">Q", body, pos)
        pos += 8
    pos += 4 if flags & 0x02 else 0  # sample description index
    pos += 4 if flags & 0x08 else 0  # default sample duration
    default_size = struct.unpack_from(">I", body, pos)[0] if flags & 0x10 else None
    return base, default_size


def _parse_trun(body: bytes, default_size: int | None) -> tuple[int, int, int]:
    """(sample count, data offset, total sample bytes) of a `trun`."""
    flags = int.from_bytes(body[1:4], "big")
    (count,) = struct.unpack_from(">I", body, 4)
    pos = 8
    offset = 0
    if flags & 0x01:
        (offset,) = struct.unpack_from(">i", body, pos)
        pos += 4
    pos += 4 if flags & 0x04 else 0  # first sample flags
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
    table = struct.unpack_from(f">{count * len(fields)}I", body, pos)
    if 0x200 in fields:
        total = sum(table[fields.index(0x200) :: len(fields)])
    elif default_size is not None:
        total = default_size * count
    else:
        raise IndexError("trun without sample sizes")
    return count, offset, total
