"""Sink stage: writers that accept only `RedactedFrame`. Sinks never import capture or detection."""

from edge.sinks.base import Sink
from edge.sinks.image_file import ImageFileSink
from edge.sinks.video_file import VideoFileSink

__all__ = ["ImageFileSink", "Sink", "VideoFileSink"]
