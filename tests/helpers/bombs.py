"""Pictures that declare more pixels than they hold, built byte by byte for the decode-limit tests
(issue 21): a PNG header, a JPEG with its frame header rewritten, AVI files whose header or whose
frames are larger than the rest."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import av
import cv2
import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header (8-bit RGB) and almost no image data: tens of bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + _chunk(b"IEND", b"")
    )


def jpeg_declaring(image: np.ndarray, width: int, height: int) -> bytes:
    """`image` as a baseline JPEG whose frame header (SOF0) declares another size."""
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    data = bytearray(encoded.tobytes())
    at = data.find(b"\xff\xc0")
    assert at > 0
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _avi(frames: list[bytes], codec: str, size: tuple[int, int], pix_fmt: str) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="avi") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        for index, payload in enumerate(frames):
            packet = av.Packet(payload)
            packet.stream = stream
            packet.pts = packet.dts = index
            packet.time_base = Fraction(1, 30)
            container.mux(packet)
    return out.getvalue()


def avi_declaring(width: int, height: int) -> bytes:
    """Raw grey video whose header says width x height; its frames hold 256x256 bytes."""
    data = _avi([bytes(256 * 256)] * 2, "rawvideo", (256, 256), "gray")
    small, large = struct.pack("<II", 256, 256), struct.pack("<II", width, height)
    assert data.count(small) == 2  # the main header and the stream's
    return data.replace(small, large)


def mjpeg_avi(sizes: list[tuple[int, int]]) -> bytes:
    """Motion JPEG declaring the first frame's size, each frame as large as `sizes` says."""
    frames = []
    for width, height in sizes:
        ok, encoded = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))
        assert ok
        frames.append(encoded.tobytes())
    return _avi(frames, "mjpeg", sizes[0], "yuvj420p")
