"""A run's configuration as it may be published: in the audit log's `run_start` and in `veil
eval`'s reports. Every setting is there, but a free-text one (a camera URL, a stream-out URL, a
GStreamer pipeline) goes through `edge.capture.urls.masked`: its user, password, query and
secret-named parameters show as `***`. The config's SHA-256 is of that masked form too, so that
it cannot be used to test guesses at a password offline (every other setting is in clear)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from edge.capture.urls import masked
from edge.config import Config

# The schema's longest setting value (edge.audit.records.SettingValue); a longer one (a file
# path, a pipeline) keeps its start, and the config's SHA-256 still covers all of it.
MAX_VALUE = 200
_CUT = "...(cut)"
_Model = TypeVar("_Model", bound=BaseModel)


def public_config(cfg: Config) -> Config:
    """`cfg` with every free-text setting masked as `masked` does."""
    return _masked(cfg)


def _masked(model: _Model) -> _Model:
    changes: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            inner = _masked(value)
            if inner is not value:
                changes[name] = inner
        elif isinstance(value, str) and masked(value) != value:
            changes[name] = masked(value)
    return model.model_copy(update=changes) if changes else model


def config_sha256(cfg: Config) -> str:
    return public_config(cfg).sha256()


def flat_settings(cfg: Config) -> dict[str, str | int | float | bool]:
    """Every setting, masked, as `section.key = scalar`; a tuple becomes a comma-joined string."""
    out: dict[str, str | int | float | bool] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, (list, tuple)):
            out[prefix] = _fit(",".join(str(v) for v in value))
        else:
            out[prefix] = _fit(value) if isinstance(value, str) else value

    walk("", public_config(cfg).model_dump())
    return out


def _fit(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - len(_CUT)] + _CUT
