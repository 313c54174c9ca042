"""What a check is and what it answers, kept apart from the checks so both modules can use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Level = Literal["ok", "warn", "fail"]
THERMAL = Path("/sys/class/thermal")


@dataclass(frozen=True)
class Context:
    """What the checks look at: the command line's paths, and the sysfs root (tests point it at
    a fake thermal zone, since a machine's real temperature cannot be set)."""

    config: Path | None = None
    key_dir: Path | None = None
    output_dir: Path | None = None
    thermal_root: Path = field(default=THERMAL)


@dataclass(frozen=True)
class Result:
    """One line of the report: a fail or a warn always says, in `fix`, what to do about it."""

    name: str
    level: Level
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "level": self.level, "detail": self.detail, "fix": self.fix}


Check = Callable[[Context], Result]


def worst(*levels: Level) -> Level:
    """The most serious of `levels`, so one line can carry several findings."""
    order: tuple[Level, ...] = ("ok", "warn", "fail")
    return max(levels, key=order.index, default="ok")
