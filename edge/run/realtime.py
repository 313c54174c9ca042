"""A live source's deadlines: how long a frame may wait to be vouched for, and what becomes of
one that waits too long (dropped or fully obscured, never passed clear)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from edge.config import LiveConfig
from edge.frames import RawFrame


@dataclass(frozen=True)
class Realtime:
    """A live source's rules: each frame has `max_latency_ms` from capture to be vouched for."""

    max_latency_ms: float = 150.0
    late: Literal["drop", "obscure"] = "drop"
    detect_every: int = 1
    lookahead: int = 0
    queue: int = 2
    cycle: int = 1  # searches in which the detector covers the whole picture (LiveConfig.cycle)

    @classmethod
    def of(cls, cfg: LiveConfig) -> Realtime:
        return cls(
            cfg.max_latency_ms, cfg.late, cfg.detect_every, cfg.lookahead, cfg.queue, cfg.cycle
        )

    @property
    def after(self) -> int:
        """Searched frames that must follow a frame before it is vouched for: with a cycle of
        K, a face that appears just after its part of the picture was searched is found K
        searches later, and waiting for K - 2 of them leaves it clear on one frame at most."""
        return min(self.lookahead, max(0, self.cycle - 2))

    def age_ms(self, raw: RawFrame) -> float:
        return 0.0 if raw.captured is None else (time.monotonic() - raw.captured) * 1000.0

    def is_late(self, raw: RawFrame) -> bool:
        return self.age_ms(raw) > self.max_latency_ms

    def hold_over(self, raw: RawFrame) -> bool:
        """Half the budget is for waiting on later frames; the rest for redaction and output."""
        return self.age_ms(raw) >= self.max_latency_ms / 2
