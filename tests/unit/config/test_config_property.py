"""Whatever `veil check-config` accepts, Veil can run with. Hypothesis draws profiles from the
settings' own declared bounds (every setting, so a bound added later is drawn too); each profile
check-config accepts is then run for real, in this process, by `veil redact` (a clip and a photo)
and by `veil run` (the clip played as a camera, the preview on when drawn), and must finish."""

from __future__ import annotations

import json
import math
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from edge.cli.main import main
from edge.config import Config, config_problems
from edge.sample import write_sample

# Settings that name a place rather than a quantity: drawn from what a test can use.
PLACES: dict[str, st.SearchStrategy[Any]] = {
    "live.source": st.just("SOURCE"),  # replaced by the clip's file: spec
    "preview.bind": st.sampled_from(["", "127.0.0.1:0"]),
    "stream_out.url": st.just(""),  # a receiver is out of reach here; test_stream_out_run.py
}
_INT64 = 2**63 - 1


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None, bool]:
    lo = hi = None
    open_low = False
    for item in metadata:
        if isinstance(item, at.Ge):
            lo = item.ge
        elif isinstance(item, at.Gt):
            lo, open_low = item.gt, True
        elif isinstance(item, at.Le):
            hi = item.le
        elif isinstance(item, at.Lt):
            hi = item.lt
    return lo, hi, open_low


def _value(kind: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Values of one type within its declared bounds (a tuple's items within theirs)."""
    origin = get_origin(kind)
    if origin is Literal:
        return st.sampled_from(get_args(kind))
    if origin is tuple:
        items = get_args(kind)
        if len(items) == 2 and items[1] is Ellipsis:  # the model's length rules filter these
            return st.lists(_value(items[0], []), max_size=4).map(tuple)
        return st.tuples(*(_value(item, []) for item in items))
    if hasattr(kind, "__metadata__"):  # Annotated[int, Field(...)]
        inner, *extra = get_args(kind)
        found = [m for e in extra for m in getattr(e, "metadata", [e])]
        return _value(inner, found)
    if kind is bool:
        return st.booleans()
    lo, hi, open_low = _bounds(metadata)
    # The edges themselves half the time: the smallest and largest values accepted are where a
    # bound that does not match what the code can run with shows.
    if kind is int:
        low, high = int(lo) if lo is not None else 0, int(hi) if hi is not None else _INT64
        return st.sampled_from([low, high]) | st.integers(low, high)
    if kind is float:
        low = float(lo) if lo is not None else -1e9
        low = math.nextafter(low, math.inf) if open_low else low
        high = float(hi) if hi is not None else 1e9
        return st.sampled_from([low, high]) | st.floats(
            low, high, allow_nan=False, allow_infinity=False
        )
    raise AssertionError(f"no strategy for {kind!r}: add one here")


def _section(model: type[BaseModel], prefix: str = "") -> st.SearchStrategy[dict[str, Any]]:
    """Some of a section's settings (each drawn or left out), nested sections likewise."""
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        optional[name] = _setting(info, f"{prefix}{name}")
    return st.fixed_dictionaries({}, optional=optional)


def _setting(info: FieldInfo, dotted: str) -> st.SearchStrategy[Any]:
    if dotted in PLACES:
        return PLACES[dotted]
    kind = info.annotation
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return _section(kind, f"{dotted}.")
    if get_origin(kind) in (Union, types.UnionType):
        raise AssertionError(f"{dotted}: optional settings need a strategy here")
    return _value(kind, list(info.metadata))


def toml(table: dict[str, Any]) -> str:
    """The profile as TOML (the subset profiles use: tables, numbers, strings, flat arrays)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            assert math.isfinite(v)
            return repr(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        return "[" + ", ".join(value(x) for x in v) + "]"

    lines: list[str] = []

    def emit(section: dict[str, Any], name: str) -> None:
        scalars = {k: v for k, v in section.items() if not isinstance(v, dict)}
        if name:
            lines.append(f"[{name}]")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in section.items():
            if isinstance(v, dict):
                emit(v, f"{name}.{k}" if name else k)

    emit(table, "")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    """A folder with a short clip of real faces and a photo, small so that each run is quick."""
    root = tmp_path_factory.mktemp("media")
    write_sample(root / "clip.mp4", width=192, height=108, seconds=0.3)
    photo = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    assert cv2.imwrite(str(root / "photo.png"), photo)
    return root


def test_the_drawn_profiles_cover_every_setting() -> None:
    """The strategy reaches every setting: a new one without a strategy fails here, not later."""
    walked: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            kind = info.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                walk(kind, f"{prefix}{name}.")
            else:
                _setting(info, prefix + name)
                walked.append(prefix + name)

    walk(Config, "")
    assert len(walked) > 60 and "live.fps" in walked and "redact.color" in walked


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(profile=_section(Config))
def test_every_accepted_profile_runs(
    profile: dict[str, Any], media: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("run")
    if "source" in profile.get("live", {}):
        profile["live"]["source"] = f"file:{media / 'clip.mp4'}"
    path = work / "profile.toml"
    path.write_text(toml(profile), encoding="utf-8")
    if config_problems(path):
        reject()
    keys = ["--key-dir", str(work / "keys")]
    # Exit 3 means some frames were fully obscured (a slow or late detector): a run that
    # finished, failing closed, which is what such a profile asks for.
    code = main(["redact", str(media), "-o", str(work / "out"), "--config", str(path), *keys])
    assert code in (0, 3), toml(profile)
    args = ["run", "--config", str(path), "--source", f"file:{media / 'clip.mp4'}"]
    code = main([*args, "--realtime", "--output-dir", str(work / "rec"), *keys])
    assert code in (0, 3), toml(profile)
