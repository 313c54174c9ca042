"""Configuration is closed-world, validated up front, and has no way to weaken redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import Config, load_config
from edge.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_profile_validates(path: Path) -> None:
    assert isinstance(load_config(path), Config)


def test_the_recorded_profile_spells_out_the_defaults() -> None:
    assert (
        load_config(Path(__file__).resolve().parents[1] / "configs" / "recorded.toml") == Config()
    )


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
