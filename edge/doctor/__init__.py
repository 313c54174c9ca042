"""`veil doctor`: is this device ready to record? Each check looks at one thing (a library, its
telemetry, the models, the key folder, the disk, the clock, the board's health, the sandbox) and
answers ok, warn or fail with the fix in plain words, so that a person setting up a camera learns
what is wrong before the first recording rather than from a failed one.

Hardware libraries are imported inside their check: a device without one gets a line saying so,
never a traceback, and a check that raises is reported as a fail instead of stopping the rest.
"""

from __future__ import annotations

from edge.doctor import device, runtime
from edge.doctor.base import Check, Context, Level, Result, worst

# In the order they are printed: what Veil runs on first, then what it works with.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("opencv", runtime.check_opencv),
    ("onnxruntime", runtime.check_onnxruntime),
    ("telemetry", runtime.check_telemetry),
    ("litert", runtime.check_litert),
    ("glibc", runtime.check_glibc),
    ("picamera2", runtime.check_picamera2),
    ("models", device.check_models),
    ("keys", device.check_keys),
    ("recordings", device.check_recordings),
    ("clock", device.check_clock),
    ("temperature", device.check_temperature),
    ("throttling", device.check_throttling),
    ("sandbox", device.check_sandbox),
)


def run_checks(context: Context) -> list[Result]:
    """Every check's result, in order; one that raises becomes a fail naming its exception's
    class (not its message, which could quote a file's contents)."""
    results = []
    for name, check in CHECKS:
        try:
            results.append(check(context))
        except Exception as exc:  # the report must go on past a broken check
            results.append(
                Result(
                    name,
                    "fail",
                    f"the check itself failed ({type(exc).__name__})",
                    "report this as a bug in `veil doctor`, with the line above",
                )
            )
    return results


__all__ = ["CHECKS", "Check", "Context", "Level", "Result", "run_checks", "worst"]
