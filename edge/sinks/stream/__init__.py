"""The redacted stream out: H.264 pushed over RTSP to a server an NVR reads (rtsp.py, from a
child process), or H.264 in MPEG-TS or MJPEG written to standard output (stdout.py); out.py is
the Tap the frame loop feeds, with its queue, losses and reconnections."""

from edge.sinks.stream.out import StreamOut

__all__ = ["StreamOut"]
