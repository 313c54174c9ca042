"""Still images (JPEG, PNG) through OpenCV. EXIF orientation is applied; no metadata is kept."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from edge.errors import MediaError
from edge.frames import Pixels, RawFrame


class ImageFileSource:
    kind = "image-file"
    rate: Fraction | None = None

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            raise MediaError(f"{path}: cannot read ({exc.strerror})") from None
        if not data.size:
            raise MediaError(f"{path}: the file is empty")
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if image is None:
            raise MediaError(f"{path}: not a readable image (damaged, cut short, or not JPEG/PNG)")
        self._image: Pixels = np.asarray(image, dtype=np.uint8)
        self.height, self.width = int(image.shape[0]), int(image.shape[1])

    def frames(self) -> Iterator[RawFrame]:
        yield RawFrame(self._image, 0)

    def close(self) -> None:
        pass
