"""The whole configuration, `Config`, and reading it from a TOML profile: every problem of a file
reported with its line, in plain words."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from pydantic import ValidationError, model_validator

from edge.config.base import Closed as _Closed
from edge.config.errors import KeyedProblem, located, plain
from edge.config.input import InputConfig
from edge.config.lines import key_lines, line_of
from edge.config.live import LiveConfig, RecordConfig
from edge.config.outputs import PreviewConfig, StreamOutConfig
from edge.config.pipeline import AuditConfig, DetectorConfig, RedactConfig, TrackConfig, VideoConfig
from edge.config.schedule import ScheduleConfig
from edge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Config(_Closed):
    detector: DetectorConfig = DetectorConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    track: TrackConfig = TrackConfig()
    redact: RedactConfig = RedactConfig()
    video: VideoConfig = VideoConfig()
    audit: AuditConfig = AuditConfig()
    live: LiveConfig = LiveConfig()
    record: RecordConfig = RecordConfig()
    preview: PreviewConfig = PreviewConfig()
    stream_out: StreamOutConfig = StreamOutConfig()
    input: InputConfig = InputConfig()

    @model_validator(mode="after")
    def _keeps_up(self) -> Config:
        """The latency budget must hold the frames a frame waits for its searches, at the
        camera's rate and at `min_fps`, with the shortest sweep (`edge.run.pace` lengthens it only
        where the budget holds it)."""
        live, plan = self.live, self.schedule
        for fps, sweep in ((live.fps, plan.sweep), (live.least_fps, plan.sweep)):
            needed = plan.wait(sweep) * 1000.0 / fps
            if live.max_latency_ms < needed:
                raise KeyedProblem(
                    ("live", "max_latency_ms"),
                    f"{live.max_latency_ms:g} ms is shorter than the schedule needs: at "
                    f"{fps:g} frames/s a sweep of {sweep} frames holds a frame "
                    f"{plan.wait(sweep)} frames, {needed:.0f} ms; raise it or shorten "
                    "schedule.sweep (or max_sweep)",
                    absolute=True,
                )
        return self

    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


_SHOWN_PROBLEMS = 3  # problems on `veil run`'s or `veil redact`'s one error line


# A profile is a few kilobytes; more is not a profile (and /dev/zero would never end).
_MAX_CONFIG_BYTES = 1 << 20


def _read(path: Path) -> tuple[str, dict[str, object]]:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_CONFIG_BYTES + 1)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: a config file is at most {_MAX_CONFIG_BYTES} bytes")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and tables by recursion; no setting is nested deeply.
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def config_problems(path: Path) -> list[str]:
    """Every problem of a config file, one line each: `FILE:LINE: key.path: message`."""
    text, raw = _read(path)
    try:
        Config.model_validate(raw)
    except ValidationError as exc:
        lines = key_lines(text)
        out = []
        for error in exc.errors():
            loc = located(error)
            line = line_of(lines, loc)
            where = f"{path}:{line}" if line is not None else str(path)
            out.append(f"{where}: {'.'.join(str(p) for p in loc)}: {plain(error, Config)}")
        return out
    return []


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    _, raw = _read(path)
    try:
        return Config.model_validate(raw)
    except ValidationError:
        # Every problem on the one error line, up to a few: fixing one at a time is slow.
        problems = config_problems(path)
        shown = _SHOWN_PROBLEMS
        more = (
            f" (and {len(problems) - shown} more: `veil check-config {path}`)"
            if len(problems) > shown
            else ""
        )
        raise ConfigError("; ".join(problems[:shown]) + more) from None
