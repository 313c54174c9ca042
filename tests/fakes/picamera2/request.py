"""FAKE picamera2.request: `CompletedRequest` and `MappedArray`, shaped after the real ones.

A request owns one of the camera's few frame buffers until `release()` hands it back; a request
that is never released keeps its buffer, so a source that forgets `release()` starves the fake
camera exactly as it would starve the real one. Arrays have the real layouts: "RGB888" main is
(h, w, 3) with bytes in B, G, R order, "YUV420" lores is (h * 3 // 2, stride) with the Y plane in
the first h rows and the U and V planes, each of stride // 2 bytes a row, packed after it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from picamera2.picamera2 import Picamera2

Bytes = NDArray[np.uint8]

RGB_FORMATS = ("RGB888", "BGR888")
YUV_FORMATS = ("YUV420",)


def align_up(value: int, step: int) -> int:
    return -(-value // step) * step


def stride_for(fmt: str, width: int) -> int:
    """The fake's row stride in bytes. It always pads, by 64 bytes past 64-byte alignment, even
    where the real ISP would not, so that a reader that ignores the stride always sees it."""
    row = width * 3 if fmt in RGB_FORMATS else width
    return align_up(row, 64) + 64


def frame_size(fmt: str, size: tuple[int, int], stride: int) -> int:
    return stride * size[1] * 3 // 2 if fmt in YUV_FORMATS else stride * size[1]


@dataclass
class FrameBuffer:
    """One frame buffer of each configured stream, as the camera's DMA would fill it."""

    planes: dict[str, Bytes]
    held: bool = False  # lent to a request that has not been released


def shaped(flat: Bytes, config: dict[str, Any]) -> Bytes:
    """The buffer as the real picamera2 shows it (a view, no copy)."""
    fmt, (w, h), stride = config["format"], config["size"], config["stride"]
    if fmt in RGB_FORMATS:
        return flat.reshape(h, stride)[:, : w * 3].reshape(h, w, 3)
    if fmt in YUV_FORMATS:
        return flat.reshape(h * 3 // 2, stride)
    raise RuntimeError(f"fake picamera2: format {fmt!r} is not faked")


class CompletedRequest:
    """FAKE of picamera2.request.CompletedRequest: one captured frame, all streams."""

    def __init__(
        self, picam2: Picamera2, buffer: FrameBuffer, metadata: dict[str, Any], stop_count: int
    ) -> None:
        self.picam2 = picam2
        self.lock: threading.Lock = picam2.request_lock
        self.ref_count = 1
        self.stop_count = stop_count
        self.config: dict[str, Any] = dict(picam2.camera_config)
        self.stream_map: dict[str, str | None] = {
            name: (name if picam2.camera_config.get(name) else None) for name in ("main", "lores")
        }
        self._buffer: FrameBuffer | None = buffer
        self._metadata = metadata
        self.delivered = False  # handed to the application by capture_request()

    def _live(self) -> FrameBuffer:
        if self._buffer is None:
            raise RuntimeError("fake picamera2: request used after release()")
        if not self.picam2.is_open:
            raise RuntimeError("fake picamera2: request used after the camera was closed")
        return self._buffer

    def acquire(self) -> None:
        with self.lock:
            if self.ref_count == 0:
                raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
            self.ref_count += 1

    def release(self) -> None:
        """Hand the buffer back to the camera once the last reference is released."""
        with self.lock:
            self.ref_count -= 1
            if self.ref_count < 0:
                raise RuntimeError("CompletedRequest: lock now has negative ref_count")
            if self.ref_count > 0:
                return
            buffer, self._buffer = self._buffer, None
            self.config = {}
            self.stream_map = {}
        assert buffer is not None
        self.picam2._recycle(buffer, self.delivered)

    def get_metadata(self) -> dict[str, Any]:
        self._live()
        return dict(self._metadata)

    def _plane(self, name: str) -> tuple[Bytes, dict[str, Any]]:
        config = self.config.get(name)
        if config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        return self._live().planes[name], config

    def make_buffer(self, name: str) -> Bytes:
        flat, _ = self._plane(name)
        return np.array(flat, dtype=np.uint8)

    def make_array(self, name: str) -> Bytes:
        """A copy of the named stream, the real shapes: the camera's buffer is never lent out."""
        with MappedArray(self, name, write=False) as m:
            assert m.array is not None
            if m.array.data.c_contiguous:
                return np.copy(m.array)
            return np.ascontiguousarray(m.array)


class MappedArray:
    """FAKE of picamera2.request.MappedArray: the live buffer as an array, inside `with`."""

    def __init__(
        self, request: CompletedRequest, stream: str, reshape: bool = True, write: bool = True
    ) -> None:
        self._request = request
        self._stream = stream
        self._reshape = reshape
        self._write = write
        self._array: Bytes | None = None

    def __enter__(self) -> MappedArray:
        flat, config = self._request._plane(self._stream)
        view = shaped(flat, config) if self._reshape else flat
        if not self._write:
            view = view.view()
            view.flags.writeable = False
        self._array = view
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._array = None

    @property
    def array(self) -> Bytes | None:
        return self._array
