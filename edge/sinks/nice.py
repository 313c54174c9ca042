"""Side outputs run below the frame loop: their CPU is what the loop leaves over.

The preview's JPEG encoder and the stream out's encoder compete with detection for the same
cores (a Pi 5 has four, and x264 in software), and a frame that waits for the CPU is a frame
closer to its deadline. Linux gives each thread its own nice value, so lowering the thread (or
the child process) that encodes for a side output is enough; the kernel hands it the cores only
when the loop's threads are idle or have had their share.
"""

from __future__ import annotations

import os
import threading

NICER_BY = 10  # the loop's threads keep about 9 times the CPU share of a niced one


def below_the_loop() -> None:
    """Lower the calling thread's priority by NICER_BY (once; at most to 19). Where the platform
    has no per-thread priority, nothing changes: the output still works, only less politely."""
    try:
        tid = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + NICER_BY))
    except (AttributeError, OSError):
        pass
