"""The preview's self-signed certificate, for HTTPS on a network without a certificate authority.

Made once beside the device key and reused, so a browser that was told to trust it (or a viewer
who checked the SHA-256 fingerprint `veil preview url` prints) keeps trusting the same one. The
key is EC P-256, which every browser accepts for TLS (Ed25519 certificates are not), and is kept
0600 like the device key; the certificate itself is public.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.durable import sync_folder
from edge.errors import AuditError
from edge.private_files import make_folder, read_private, write_private

CERT_NAME = "preview-cert.pem"
KEY_NAME = "preview-key.pem"
VALID_DAYS = 3650
COMMON_NAME = "veil preview"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    fingerprint: str  # SHA-256 of the DER certificate, "AA:BB:..."


def load_or_create_cert(folder: Path) -> TlsFiles:
    """The certificate and key in `folder`, made first where missing. A certificate that does
    not belong to the key (a half-finished first run, a stray file) is made again from it."""
    make_folder(folder)
    key_path, cert_path = folder / KEY_NAME, folder / CERT_NAME
    if not key_path.exists():
        fresh = ec.generate_private_key(ec.SECP256R1())
        pem = fresh.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(key_path, pem, "preview TLS key")  # False: a racing run's key stays
    key = _load_key(key_path)
    if not _cert_matches(cert_path, key):
        _publish(cert_path, _self_signed(key).public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_path, key_path, fingerprint_of(cert_path))


def fingerprint_of(cert_path: Path) -> str:
    """The SHA-256 of the certificate's DER bytes as colon-separated hex: what a browser shows."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(read_private(path, "preview TLS key"), None)
    except ValueError:
        raise AuditError(
            f"{path} is not a PEM private key; delete it and a new one is made"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuditError(f"{path} is not an EC key; delete it and a new one is made")
    return key


def _cert_matches(path: Path, key: ec.EllipticCurvePrivateKey) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.public_key() == key.public_key()


def _names() -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    host = socket.gethostname().strip().rstrip(".")
    # A name the certificate can carry as-is (IDNA names would need their A-label form).
    if host and host.isascii() and host != "localhost" and " " not in host:
        names.append(x509.DNSName(host))
    return names


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # a device clock a little behind
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names()), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _publish(path: Path, data: bytes) -> None:
    """Replace `path` whole: written and fsync'd under a temporary name, then renamed."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        sync_folder(path.parent)
    except OSError as exc:
        raise AuditError(f"cannot write the preview certificate {path}: {exc.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)
