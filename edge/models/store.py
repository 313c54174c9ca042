"""Where model files live, and the one way to read one: through its pinned SHA-256."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from edge.digest import sha256_bytes
from edge.errors import ModelError
from edge.models.manifest import load_manifest


def models_dir() -> Path:
    """`$VEIL_MODELS_DIR`, else `models/` of a checkout, else the per-user data directory."""
    env = os.environ.get("VEIL_MODELS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = Path(__file__).resolve().parents[2]
    if (root / "models" / "manifest.toml").is_file() and (root / "pyproject.toml").is_file():
        return root / "models"
    return Path(platformdirs.user_data_dir("veil-edge", appauthor=False)) / "models"


def model_path(name: str) -> Path:
    return models_dir() / load_manifest().get(name).file


def verified_model_bytes(name: str) -> bytes:
    """The model's bytes, only if they hash to the manifest's pin. Anything else is refused."""
    entry = load_manifest().get(name)
    path = models_dir() / entry.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(
            f"model {name!r} not found at {path}; run `veil models fetch` once, at install time"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read model {name!r} at {path}: {exc}") from None
    digest = sha256_bytes(data)
    if digest != entry.sha256:
        raise ModelError(
            f"model {name!r} at {path} has SHA-256 {digest}, not the pinned {entry.sha256}; "
            "refusing to load it (run `veil models fetch` to replace it)"
        )
    return data
