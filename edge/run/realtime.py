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
    queue: int = 2

    @classmethod
    def of(cls, cfg: LiveConfig) -> Realtime:
        return cls(cfg.max_latency_ms, cfg.late, cfg.queue)

    def age_ms(self, raw: RawFrame) -> float:
        return 0.0 if raw.captured is None else (time.monotonic() - raw.captured) * 1000.0

    def is_late(self, raw: RawFrame) -> bool:
        return self.age_ms(raw) > self.max_latency_ms
