"""Veil: on-device face redaction. Every frame that leaves the pipeline has been redacted."""

import os

from edge.telemetry import switch_off

# Here, before any module of Veil's can import onnxruntime: it reads its switch at import.
switch_off()

__version__ = "0.1.0"

# OpenCV refuses to decode a picture whose header declares more pixels than this: a second line
# behind Veil's own header check (edge.capture.image_file), at the most that `[input]
# max_image_area` allows. OpenCV reads it once, as it loads: set before any module imports cv2.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "400000000")
