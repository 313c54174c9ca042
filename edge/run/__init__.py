"""The run: frames carried from a source through detection, tracking and redaction to a sink.

`vouch.py` holds the per-frame logic every run shares (detect → track → vouch → redact, fail
closed); `conveyor.py` runs it in one thread per stage; `realtime.py` is a live source's
deadlines; `report.py` what a run counts. Beside them, what a live run tells the device:
`status.py` (the status file) and `notify.py` (systemd's notify protocol and watchdog).
"""

from edge.run.conveyor import Conveyor, Hooks, run
from edge.run.notify import Notifier, Watchdog, recording_status, watchdog_interval
from edge.run.realtime import Realtime
from edge.run.report import RunReport, Timings
from edge.run.status import StatusBoard, cpu_temp_c
from edge.run.vouch import redact_held, redact_stream, vouch

__all__ = [
    "Conveyor",
    "Hooks",
    "Notifier",
    "Realtime",
    "RunReport",
    "StatusBoard",
    "Timings",
    "Watchdog",
    "cpu_temp_c",
    "recording_status",
    "redact_held",
    "redact_stream",
    "run",
    "vouch",
    "watchdog_interval",
]
