"""Capture stage: `FrameSource` and its backends for recorded media. Live cameras come later and
import their hardware libraries lazily."""

from edge.capture.base import FrameSource
from edge.capture.image_file import ImageFileSource
from edge.capture.video_file import VideoFileSource

__all__ = ["FrameSource", "ImageFileSource", "VideoFileSource"]
