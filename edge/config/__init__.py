"""Closed-world configuration, validated before any media is opened: every section a closed model
(`base.py`), each bounded so that no value can switch redaction off in effect. Callers import from
here, never from a module below.

`pipeline.py` holds the sections every run reads, `live.py` and `outputs.py` those of `veil run`,
`input.py` the decoding limits; `load.py` the whole `Config` and reading it from TOML, with each
problem on its line (`lines.py`) in plain words (`errors.py`).
"""

from edge.config.errors import first_problem
from edge.config.input import DEFAULT_MAX_PIXELS, MAX_PIXELS_CEILING, InputConfig
from edge.config.live import LiveConfig, RecordConfig
from edge.config.load import Config, config_problems, load_config
from edge.config.outputs import (
    DEFAULT_PREVIEW_PORT,
    PreviewConfig,
    StreamOutConfig,
    is_loopback,
    parse_bind,
)
from edge.config.pipeline import (
    AuditConfig,
    BlazeFaceConfig,
    CenterFaceConfig,
    DetectorConfig,
    LowLightConfig,
    RedactConfig,
    TrackConfig,
    VideoConfig,
)
from edge.config.schedule import WAIT_SLACK, ScheduleConfig, frames_waited

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PREVIEW_PORT",
    "MAX_PIXELS_CEILING",
    "AuditConfig",
    "BlazeFaceConfig",
    "CenterFaceConfig",
    "Config",
    "DetectorConfig",
    "InputConfig",
    "LiveConfig",
    "LowLightConfig",
    "PreviewConfig",
    "RecordConfig",
    "RedactConfig",
    "ScheduleConfig",
    "StreamOutConfig",
    "TrackConfig",
    "VideoConfig",
    "WAIT_SLACK",
    "config_problems",
    "frames_waited",
    "first_problem",
    "is_loopback",
    "load_config",
    "parse_bind",
]
