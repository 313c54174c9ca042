"""The device key: an Ed25519 key pair and a random device id, made on first use.

The private key is written once, with mode 0600, in a folder of its own (`$VEIL_KEY_DIR`, else
the per-user data folder); it is refused if anyone but its owner can read it or write its folder,
and it must never sit in a folder whose contents are published. The device id is derived from
the random key, never from a hardware serial.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import AuditError, UsageError
from edge.private_files import read_private, write_private

PRIVATE_NAME = "device-key.pem"
PUBLIC_NAME = "device-key.pub.pem"


def default_key_dir() -> Path:
    env = os.environ.get("VEIL_KEY_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("veil-edge", appauthor=False)) / "keys"


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def strict_b64(text: str) -> bytes:
    """Decode base64 that is spelled the one canonical way: the unused low bits of the last
    character must be zero, or one signature would have several spellings (and line hashes)."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("base64 not in canonical form")
    return raw


def public_from_b64(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(strict_b64(text))


def signature_holds(key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        key.verify(strict_b64(signature_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class DeviceKey:
    private: Ed25519PrivateKey
    device_id: str
    folder: Path

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_b64(self) -> str:
        return base64.b64encode(raw_public(self.public)).decode("ascii")

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode("ascii")

    def public_pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def load_or_create(folder: Path | None = None) -> tuple[DeviceKey, bool]:
    """The device key in `folder`, made there first if it has none. Returns (key, created)."""
    folder = folder or default_key_dir()
    private_path = folder / PRIVATE_NAME
    if private_path.exists():
        return _load(folder), False
    return _create(folder), True


def device_id_of(key: Ed25519PrivateKey) -> str:
    """A random-looking id bound to the key (a domain-separated hash of its private half): it is
    made with the key and changes with it, and is never a hardware serial."""
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hashlib.sha256(b"veil device id\0" + raw).hexdigest()[:32]


def _create(folder: Path) -> DeviceKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Linked into place whole: if a racing first run won, its key is the one.
    if not write_private(folder / PRIVATE_NAME, pem, "device key"):
        return _load(folder)
    made = DeviceKey(key, device_id_of(key), folder)
    public = folder / PUBLIC_NAME
    public_temp = public.with_name(f".{PUBLIC_NAME}.{secrets.token_hex(4)}.tmp")
    try:
        public_temp.write_bytes(made.public_pem())
        os.replace(public_temp, public)
    except OSError as exc:
        why = exc.strerror or exc
        raise AuditError(f"cannot write the public key {public}: {why}") from None
    finally:
        public_temp.unlink(missing_ok=True)
    return made


def _load(folder: Path) -> DeviceKey:
    path = folder / PRIVATE_NAME
    try:
        private = serialization.load_pem_private_key(
            read_private(path, "device key"), password=None
        )
    except ValueError:
        raise AuditError(f"{path} is not a PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise AuditError(f"{path} is not an Ed25519 key")
    return DeviceKey(private, device_id_of(private), folder)


def load_public(path: Path) -> Ed25519PublicKey:
    """A public key exported by `veil audit pubkey` (PEM)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"public key not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read public key {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise UsageError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key")
    return key


def check_outside(folder: Path, output: Path) -> None:
    """Refuse a key folder that lies inside (or is) the output folder: outputs get published."""
    if folder.expanduser().resolve().is_relative_to(output.expanduser().resolve()):
        raise UsageError(
            f"key folder {folder} is inside the output folder {output}; the private key must "
            "never be published with the outputs (pass --key-dir elsewhere)"
        )
