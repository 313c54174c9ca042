"""Still images (JPEG, PNG) through OpenCV. EXIF orientation is applied; no metadata is kept.

The picture's size is read from its header (PNG's IHDR, JPEG's first SOF) before it is decoded,
and a picture over the pixel limit is refused: a few bytes can declare 100000x100000 pixels. Only
JPEG and PNG are decoded, whatever OpenCV could read, so no other decoder sees the bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from edge.config import DEFAULT_MAX_PIXELS
from edge.errors import MediaError
from edge.frames import Pixels, RawFrame

_PNG = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers (the baseline, progressive, lossless and arithmetic ones); C4, C8 and
# CC share the range but are other things.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length: TEM, RST0-7 (and SOI).
_BARE = frozenset({0x01, *range(0xD0, 0xD9)})


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG or JPEG header declares it, or None for anything else."""
    if data.startswith(_PNG):
        # IHDR must come first: length 13, then width and height.
        if data[8:16] != b"\x00\x00\x00\x0dIHDR" or len(data) < 24:
            return None
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8\xff"):  # what OpenCV takes for a JPEG
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walks the markers as libjpeg does: bytes between segments are skipped up to the next 0xFF,
    # fill bytes (repeated 0xFF) are skipped, and the first SOF gives the size.
    at = 2
    while True:
        at = data.find(b"\xff", at)
        while 0 <= at < len(data) - 1 and data[at + 1] == 0xFF:
            at += 1
        if at < 0 or at + 4 > len(data):
            return None
        marker = data[at + 1]
        if marker in _BARE or marker == 0x00:
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # the end, or image data, before any SOF
            return None
        if marker in _SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")


class ImageFileSource:
    kind = "image-file"
    rate: Fraction | None = None

    def __init__(self, path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.path = path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MediaError(f"{path}: cannot read ({exc.strerror})") from None
        if not data:
            raise MediaError(f"{path}: the file is empty")
        size = declared_size(data)
        unreadable = f"{path}: not a readable image (damaged, cut short, or not JPEG/PNG)"
        if size is None or 0 in size:
            raise MediaError(unreadable)
        width, height = size
        if width * height > max_pixels:
            raise MediaError(
                f"{path}: declares {width}x{height} pixels, over the limit of {max_pixels:,} "
                "([input] max_image_area); not decoded"
            )
        try:
            image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:  # OpenCV's own checks (its pixel limit, a header it rejects)
            image = None
        if image is None:
            raise MediaError(unreadable)
        self._image: Pixels = np.asarray(image, dtype=np.uint8)
        self.height, self.width = int(image.shape[0]), int(image.shape[1])

    def frames(self) -> Iterator[RawFrame]:
        yield RawFrame(self._image, 0)

    def close(self) -> None:
        pass
