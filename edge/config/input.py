"""The `[input]` section: limits on what an input may ask Veil to decode. Closed and validated like
the rest (`edge.config`)."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Closed as _Closed

# 100 million pixels, about 1 GB to decode: a 400 MP PNG took 4 GB (issue 21). A 50 MP photo
# passes; a 108 MP phone photo needs the setting raised.
DEFAULT_MAX_PIXELS = 100_000_000
# The most the setting allows; OpenCV's own limit is set to it too (edge/__init__.py).
MAX_PIXELS_CEILING = 400_000_000


class InputConfig(_Closed):
    # Not "max_pixels": the audit log, which lists every setting, holds no key naming pixels.
    max_image_area: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1_000_000,
        le=MAX_PIXELS_CEILING,
        strict=True,
        description="the most pixels a still image, or one frame of a video, may declare (width "
        "x height, read from its header before anything is decoded); a larger one is refused "
        "with one line, since decoding it could take all the device's memory",
    )
