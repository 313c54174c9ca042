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
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.durable import sync_folder
from edge.errors import AuditError, UsageError

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
    made = DeviceKey(key, device_id_of(key), folder)
    temp = folder / f".{PRIVATE_NAME}.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole and fsync'd under a temporary name (0600 from the first byte), then
        # linked into place: link fails if a racing first run won, and no reader ever sees a
        # half-written key.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, folder / PRIVATE_NAME)
        except FileExistsError:
            return _load(folder)
        sync_folder(folder)
        public = folder / PUBLIC_NAME
        public_temp = public.with_name(f".{PUBLIC_NAME}.{secrets.token_hex(4)}.tmp")
        public_temp.write_bytes(made.public_pem())
        os.replace(public_temp, public)
    except OSError as exc:
        why = exc.strerror or exc
        raise AuditError(f"cannot create the device key in {folder}: {why}") from None
    finally:
        temp.unlink(missing_ok=True)
    return made


def _load(folder: Path) -> DeviceKey:
    path = folder / PRIVATE_NAME
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditError(
                f"device key {path} can be read by others (mode {stat.filemode(info.st_mode)}); "
                f"run `chmod 600 {path}`"
            )
        if info.st_uid != os.geteuid():
            raise AuditError(f"device key {path} belongs to another user (uid {info.st_uid})")
        if folder.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise AuditError(
                f"key folder {folder} can be written by others, who could swap the key; "
                f"run `chmod 700 {folder}`"
            )
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AuditError(f"cannot read the device key in {folder}: {exc.strerror or exc}") from None
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
