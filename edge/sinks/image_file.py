"""Still image output in the input's format (JPEG or PNG). OpenCV writes no EXIF: GPS, camera
serials and the like are gone."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.errors import OutputError
from edge.frames import RedactedFrame
from edge.sinks.atomic import AtomicFile, Seal
from edge.sinks.base import Published, require_redacted

_PARAMS = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 92], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 92]}


class ImageFileSink:
    def __init__(self, path: Path, *, seal: Seal | None = None) -> None:
        self._file = AtomicFile(path)
        self._seal = seal
        self._ext = path.suffix.lower()
        self._written = False

    def write(self, frame: RedactedFrame) -> None:
        frame = require_redacted(frame)
        if self._written:
            raise OutputError(f"{self._file.final}: an image sink takes one frame")
        ok, data = cv2.imencode(self._ext, frame.pixels, _PARAMS.get(self._ext, []))
        if not ok:
            raise OutputError(f"cannot encode {self._file.final} as {self._ext}")
        try:
            self._file.temp.write_bytes(data.tobytes())
        except OSError as exc:
            raise OutputError(f"cannot write {self._file.final}: {exc.strerror}") from None
        self._written = True

    def close(self) -> Published:
        if not self._written:
            self.abort()
            raise OutputError(f"{self._file.final}: no frame was written")
        size, digest = self._file.commit(self._seal)
        return Published(self._file.final, size, digest, 1, None, None)

    def abort(self) -> None:
        self._file.discard()
