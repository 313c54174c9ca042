"""Side outputs encode below the frame loop's priority: the preview's JPEG thread and the stream
out's thread run niced (edge/sinks/nice.py), so on a loaded device the loop gets the CPU first."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from fractions import Fraction

from edge.config import PreviewConfig, StreamOutConfig
from edge.sinks.nice import NICER_BY
from edge.sinks.preview import PreviewServer
from edge.sinks.stream import StreamOut
from helpers.stream import Pipe, redacted


def niceness_of(name: str) -> int:
    thread = next(t for t in threading.enumerate() if t.name == name and t.native_id)
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def settle(check: Callable[[], bool]) -> None:
    for _ in range(100):
        if check():
            return
        threading.Event().wait(0.02)


def test_the_preview_encodes_below_the_loop() -> None:
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    server = PreviewServer(
        PreviewConfig(), "127.0.0.1", 0, token="t" * 43, tls=None, status=lambda: b"{}"
    )
    server.start()
    try:
        settle(lambda: niceness_of("veil-preview-jpeg") != mine)
        assert niceness_of("veil-preview-jpeg") == min(19, mine + NICER_BY)
    finally:
        server.close()
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # only its thread


def test_the_stream_out_encodes_below_the_loop() -> None:
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pipe = Pipe()
    out = StreamOut("-", StreamOutConfig(url="-"), Fraction(30), stdout=pipe.writer)
    out.start()
    try:
        out.offer(redacted(0))
        settle(lambda: niceness_of("veil-stream-out") != mine)
        assert niceness_of("veil-stream-out") == min(19, mine + NICER_BY)
    finally:
        out.close()
        pipe.done()
