"""Why a live run is degraded, in words a person acts on: the status file (`degraded_because`),
the preview page's banner and `veil status` show them, and stderr gets a line when frames start
failing closed (a lost camera and a full disk print their own).

A run is degraded while its source is not delivering, while the disk is full, and for
`WINDOW_S` after a frame was dropped or obscured. Each cause is named with the run's count so
far; nothing here holds a frame, a box or a credential (the source's problem comes masked).
"""

from __future__ import annotations

from collections import Counter

CANNOT_KEEP_UP = "cannot keep up"  # the cause a run that loses too much at min_fps names
WINDOW_S = 10.0  # a frame failed closed this recently keeps the run degraded

# Each cause a frame fails closed for (RunReport.failures), as a person reads it.
_FAULTS = {
    "late": "frames came too late to be vouched for: the detector is slower than "
    "[live] max_latency_ms allows",
    "overload": "frames dropped at capture: detection cannot keep up with the camera",
    "camera-skipped": "the camera skipped frames before Veil got them",
    "write-failed": "frames dropped: they could not be written to the recording",
    "disk-full": "frames dropped while the disk was full",
    "stopped": "frames dropped as the run stopped",
}
_STAGES = ("detector", "tracker", "redactor")  # "detector: ErrorName" obscures the frame


def fault_words(cause: str) -> str:
    """One cause of `RunReport.failures` in words."""
    if cause in _FAULTS:
        return _FAULTS[cause]
    stage, _, error = cause.partition(": ")
    if stage in _STAGES:
        return f"frames fully obscured: the {stage} failed ({error or 'error'})"
    return f"frames failed closed ({cause})"


class RecentFaults:
    """Which causes of frames failing closed grew within the last `WINDOW_S`, fed the run's
    counts by cause once a second."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._grew_at: dict[str, float] = {}

    def update(self, failures: Counter[str], now: float) -> list[str]:
        """Take the counts at `now`; returns the causes that were quiet and now are not."""
        fresh = []
        for cause, count in failures.items():
            if count > self._seen[cause]:
                if not self._recent(cause, now):
                    fresh.append(cause)
                self._grew_at[cause] = now
        self._seen = Counter(failures)
        return sorted(fresh)

    def recent(self, now: float) -> dict[str, int]:
        """Each cause that grew within the window, with its count over the run."""
        return {c: self._seen[c] for c in sorted(self._grew_at) if self._recent(c, now)}

    def _recent(self, cause: str, now: float) -> bool:
        at = self._grew_at.get(cause)
        return at is not None and now - at < WINDOW_S


def fault_lines(fresh: list[str]) -> list[str]:
    """Stderr's lines for causes that start now (a full disk has printed its own)."""
    return [f"veil: degraded: {fault_words(c)}" for c in fresh if c != "disk-full"]


def degraded_because(
    *,
    connected: bool,
    problem: str | None,
    storage_full: bool,
    faults: dict[str, int],
    cannot_keep_up: bool = False,
) -> list[str]:
    """Every reason the run is degraded now, in words; empty when it is not."""
    found = []
    if cannot_keep_up:
        found.append(
            f"{CANNOT_KEEP_UP}: even at the profile's min_fps this device loses more than 2 % of "
            "the frames it takes; use a lighter profile, a faster device or an accelerator"
        )
    if not connected:
        found.append(
            f"the camera is not delivering ({problem}); Veil keeps reopening it"
            if problem
            else "waiting for the camera to open"
        )
    if storage_full:
        found.append("the disk is full: recording is paused until there is room")
    for cause, count in faults.items():
        if not (storage_full and cause == "disk-full"):
            found.append(f"{fault_words(cause)} ({count} so far)")
    return found
