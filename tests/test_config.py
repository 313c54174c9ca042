"""Configuration is closed-world, validated up front, and has no way to weaken redaction."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge.config import Config, load_config
from edge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_profile_validates(path: Path) -> None:
    assert isinstance(load_config(path), Config)


def test_the_recorded_profile_spells_out_the_defaults() -> None:
    assert (
        load_config(Path(__file__).resolve().parents[1] / "configs" / "recorded.toml") == Config()
    )


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every setting's dotted name, sections walked into."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out |= _keys(kind, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def _written(table: dict[str, object], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, value in table.items():
        if isinstance(value, dict):
            out |= _written(value, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def test_the_recorded_profile_writes_out_every_setting() -> None:
    path = Path(__file__).resolve().parents[1] / "configs" / "recorded.toml"
    written = _written(tomllib.loads(path.read_text(encoding="utf-8")))
    assert _keys(Config) - written == set(), "settings missing from configs/recorded.toml"
    assert "detector.blazeface.tiles" in written and "preview.bind" in written


@pytest.mark.parametrize(
    "text, where",
    [
        ('[redact]\nmethod = "none"\n', "redact.method"),
        ("[redact]\nmask_scale = 0.5\n", "redact.mask_scale"),
        ("[detector.centerface]\nthreshold = 0.95\n", "detector.centerface.threshold"),
        ("[detector.centerface]\nmax_side = 64\n", "detector.centerface.max_side"),
        ("[detector.blazeface]\nthreshold = 0.9\n", "detector.blazeface.threshold"),
        ("[detector]\nthreshold = 0.1\n", "detector.threshold"),
        ('[detector]\nbackend = "ensemble"\nensemble = ["centerface"]\n', "detector.ensemble"),
        (
            '[detector]\nbackend = "ensemble"\nensemble = ["centerface", "centerface"]\n',
            "detector.ensemble",
        ),
        ("[track]\nhold_frames = 0\n", "track.hold_frames"),
        ("[track]\nlookahead = -1\n", "track.lookahead"),
        ("[detector]\nenabled = false\n", "detector.enabled"),
        ("[redact]\nenabled = false\n", "redact.enabled"),
        ("redaction = false\n", "redaction"),
        ('[detector]\nbackend = "recognizer"\n', "detector.backend"),
    ],
)
def test_values_that_would_weaken_redaction_are_refused(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert where in str(err.value)
    assert "\n" not in str(err.value)


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[detector\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_config_hash_changes_with_any_setting() -> None:
    a = Config()
    b = Config.model_validate({"redact": {"method": "noise"}})
    assert a.sha256() != b.sha256() and a.sha256() == Config().sha256()


def test_config_errors_are_in_plain_words_all_on_the_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[redact]\nmask_scal = 2.0\nmethod = "x"\n[detector.centerface]\nthreshold = 0.99\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "\n" not in text
    assert (
        f"{path}:2: redact.mask_scal: unknown setting `mask_scal` (did you mean `mask_scale`?)"
        in text
    )
    assert f"{path}:3: redact.method: must be one of 'fill', 'noise', 'blur' or 'pixelate'" in text
    assert f"{path}:5: detector.centerface.threshold: must be at most 0.6" in text
    assert "Input should" not in text and "Extra inputs" not in text
    # A name nothing resembles gets no guess; a section is called a section.
    path.write_text("[identify]\nenabled = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"identify: unknown section `identify`$"):
        load_config(path)
