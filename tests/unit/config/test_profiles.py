"""The shipped profiles, each through the real `veil redact --config` on the sample clip."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ROOT, Clip, veil
from edge.config import load_config
from edge.evaluate.protection import is_protected

CONFIGS = ROOT / "configs"

# Smallest face each profile is meant for, on the 720p sample (faces of 30 to 160 px).
PROFILES = {"recorded.toml": 0, "doorway.toml": 0, "bodycam.toml": 100}


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_every_profile_is_listed() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.toml")) == sorted(PROFILES)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_redacts_the_faces_it_is_meant_for(
    name: str, sample_clip: Clip, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    result = veil("redact", sample_clip.path, "-o", out, "--config", CONFIGS / name)
    assert result.returncode == 0, result.stderr
    before, after = frames(sample_clip.path), frames(out)
    assert len(after) == len(before) == len(sample_clip.truth)
    checked = 0
    for k, faces in enumerate(sample_clip.truth):
        for face in faces:
            if min(face[2], face[3]) >= PROFILES[name]:
                checked += 1
                assert is_protected(before[k], after[k], face), (name, k, face)
    assert checked >= len(sample_clip.truth)


def test_profiles_differ_where_their_settings_say() -> None:
    body, door = load_config(CONFIGS / "bodycam.toml"), load_config(CONFIGS / "doorway.toml")
    # The same detector (the bystanders are as small in both), different tracking, and a
    # different order of search: everything moves on a worn camera, a doorway's picture is still
    # but where people pass.
    assert body.detector == door.detector and body.detector.backend == "centerface"
    assert (body.schedule.order, door.schedule.order) == ("sweep", "changed")
    assert body.track.growth > door.track.growth
    assert door.track.hold_frames > body.track.hold_frames


def _still_pipeline(name: str) -> tuple[object, ...]:
    """What a still image meets under a profile: the still detector's parameters, the dark-input
    lift (stills always search both) and the redaction."""
    from edge.detect import build_detector

    cfg = load_config(CONFIGS / name)
    detector = build_detector(cfg.detector, still=True)
    keys = ("name", "threshold", "nms_iou", "max_side", "fine_scale", "tile_side")
    # max_downscale differs between them, but only moves the scale of photos over 4096 px.
    scales = tuple(detector.scale(h, w) for h, w in ((480, 640), (448, 448), (3000, 4096)))
    low = cfg.detector.low_light
    # The ellipse's size apart (the last item): a larger one, about the same centre, covers all
    # that the measured one did.
    redact = cfg.redact.model_copy(update={"mask_scale": 0.0})
    found = (*(getattr(detector, k) for k in keys), scales, low.dark_below, low.target, redact)
    return (*found, cfg.redact.mask_scale)


def test_every_profile_meets_a_still_image_the_same_way() -> None:
    """The equal-protection figures in each profile's header come from one `veil eval` run on
    the labelled photos, which go through the still-image path: that is only true while the
    profiles agree on it (tracking and lookahead do nothing to a single frame)."""
    measured = _still_pipeline("recorded.toml")  # the figures' run: the default profile
    for name in sorted(PROFILES):
        *same, mask_scale = _still_pipeline(name)
        assert same == list(measured[:-1]), name
        assert mask_scale >= measured[-1], name  # a larger ellipse only covers more
    # ...and the comparison sees a difference where there is one.
    assert measured[:-2] != (*measured[:1], 0.5, *measured[2:-2])


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_states_its_worst_group_figures(name: str) -> None:
    header = "".join(
        line for line in (CONFIGS / name).read_text().splitlines(True) if line.startswith("#")
    )
    assert "Equal protection, worst group" in header
    for words in ("FairFace", "UTKFace", "Dusk, 12 px", "clear 16 px", "[95 % interval]"):
        assert words in header, (name, words)
