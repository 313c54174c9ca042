"""C2PA provenance on outputs, signed offline by the device key.

The audit log proves what a run did only to whoever holds the log; a C2PA manifest travels inside
the file, so a clip passed on alone still says Veil redacted it and nothing changed since. It says
only that (generator Veil, `c2pa.created` then `c2pa.edited` "faces redacted"): no regions, boxes,
thumbnails or ingredients, nothing that carries pixels or says where a face was. No timestamp
authority, OCSP or remote manifest: the device may be offline.

The certificate is self-signed, so readers report `signingCredential.untrusted` (expected, not a
failure). `check_file` identifies the signer by key, not name: c2pa-python returns no signer
certificate, so the certificates in the file's bytes that hold the given key and are self-signed
by it become the only trust anchors, and c2pa reports `signingCredential.trusted` only if that key
signed the claim (the device certificate copied into another signer's chain stays untrusted)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge import __version__
from edge.audit.keys import DeviceKey, raw_public
from edge.config import Config
from edge.errors import AuditError, OutputError, UsageError
from edge.sinks.atomic import Seal

CERT_NAME = "device-cert.pem"
MIME = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
ACTION = "faces redacted"
# c2pa refuses `c2pa.created` without a source type; the pixels are a camera's capture.
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # DER before a raw Ed25519 key
MISSING = (
    "C2PA provenance needs c2pa-python: pip install 'veil-edge[c2pa]' (wheels: x86_64 and "
    "aarch64 Linux with glibc >= 2.34; none for 32-bit Raspberry Pi OS)"
)


def _lib() -> Any:
    try:
        import c2pa
    except (ImportError, OSError):  # OSError: the wheel is there but its native library is not
        raise UsageError(MISSING) from None
    return c2pa


def available() -> bool:
    try:
        return _lib() is not None
    except UsageError:
        return False


def _mime(path: Path) -> str:
    if (mime := MIME.get(path.suffix.lower())) is None:
        raise UsageError(f"C2PA manifests are made for .mp4, .jpg and .png files, not {path.name}")
    return mime


def _new_certificate(key: DeviceKey) -> bytes:
    now = dt.datetime.now(dt.timezone.utc)
    # The device's random id, never a person: nothing here names who holds the camera.
    name = x509.Name.from_rfc4514_string(f"CN=Veil device {key.device_id},O=Veil")
    usage = x509.KeyUsage(True, *[False] * 8)  # digitalSignature alone
    cert = (
        x509.CertificateBuilder(name, name, key.public, x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # a device clock a little behind
        .not_valid_after(now + dt.timedelta(days=365 * 20 + 5))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        # c2pa-rs takes emailProtection for claim signing; it refuses documentSigning.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public), False)
        # Without it c2pa-rs refuses to sign: "the certificate is invalid".
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public), False)
        .sign(key.private, None)
    )
    return cert.public_bytes(Encoding.PEM)


def device_certificate(key: DeviceKey) -> bytes:
    """PEM of the device's self-signed certificate, made once beside the key and reused."""
    path = key.folder / CERT_NAME
    try:
        pem = path.read_bytes()
        cert, soon = x509.load_pem_x509_certificate(pem), dt.datetime.now(dt.timezone.utc)
        holder = cert.public_key()
        mine = isinstance(holder, Ed25519PublicKey) and raw_public(holder) == raw_public(key.public)
        if mine and cert.not_valid_after_utc > soon + dt.timedelta(days=1):
            return pem
    except (OSError, ValueError):
        pass  # made again below; if the folder is unusable, writing says so
    pem = _new_certificate(key)
    tmp = path.with_name(f".{CERT_NAME}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(pem)
        os.chmod(tmp, 0o644)  # public material: the umask must not decide
        os.replace(tmp, path)  # no reader ever sees half a certificate
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AuditError(f"cannot write {path}: {exc.strerror or exc}") from None
    return pem


def sign_file(src: Path, dst: Path, key: DeviceKey, version: str) -> None:
    """Write `dst`: `src` with a C2PA manifest signed by the device key. `src` is unchanged."""
    # c2pa truncates the destination before reading the source: in place, it would empty it.
    if (mime := _mime(src)) != _mime(dst) or dst.resolve() == src.resolve():
        raise UsageError(f"cannot sign {src} into {dst}: not in place, and to the same kind")
    c2pa = _lib()
    agent = {"name": "Veil", "version": version}
    actions = [
        {"action": "c2pa.created", "digitalSourceType": SOURCE_TYPE, "softwareAgent": agent},
        {"action": "c2pa.edited", "description": ACTION, "softwareAgent": agent},
    ]
    manifest = {
        "claim_generator_info": [agent],
        "title": dst.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }
    # The private key stays in memory, handed straight to c2pa: never written anywhere new.
    private_pem = key.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
        builder = c2pa.Builder(manifest, c2pa.Context(settings))
        alg = c2pa.C2paSigningAlg.ED25519
        info = c2pa.C2paSignerInfo(alg, device_certificate(key), private_pem, None)
        with src.open("rb") as source, dst.open("w+b") as out:
            builder.sign(c2pa.Signer.from_info(info), mime, source, out)
    except (c2pa.C2paError, OSError, ValueError) as exc:
        dst.unlink(missing_ok=True)
        why = " ".join(str(exc).split())  # c2pa's messages run over several lines
        raise OutputError(f"cannot attach C2PA manifest to {dst}: {why}") from None


def seal_for(cfg: Config, key: DeviceKey) -> Seal | None:
    """With `[audit] c2pa`, each output gets a C2PA manifest signed by the device key."""
    if not cfg.audit.c2pa:
        return None
    return lambda src, dst: sign_file(src, dst, key, __version__)


def _anchors(path: Path, public_raw: bytes) -> str:
    """PEMs of the certificates in `path` that hold `public_raw` and are self-signed by it."""
    needle, found, buf = SPKI_PREFIX + public_raw, set(), b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):  # streamed: a clip may not fit in memory
            buf, at = buf[-4096:] + chunk, -1  # a certificate cut by one read is whole in the next
            while (at := buf.find(needle, at + 1)) != -1:
                # The key lies a few hundred bytes into its certificate: try each DER start before.
                start = buf.rfind(b"\x30\x82", max(0, at - 2048), at)
                while start != -1:
                    end = start + 4 + int.from_bytes(buf[start + 2 : start + 4], "big")
                    try:
                        cert = x509.load_der_x509_certificate(buf[start:end])
                        cert.verify_directly_issued_by(cert)
                        found.add(cert.public_bytes(Encoding.PEM).decode())
                        break
                    except (ValueError, TypeError, InvalidSignature):
                        start = buf.rfind(b"\x30\x82", max(0, at - 2048), start)
    return "".join(sorted(found))


def _codes(entries: Any) -> set[str]:
    return {str(e.get("code")) for e in entries or [] if isinstance(e, dict)}


def check_file(path: Path, public_raw: bytes) -> str | None:
    """None when `path` holds a valid Veil "faces redacted" manifest signed by `public_raw`
    (raw Ed25519 bytes); otherwise a one-line reason."""
    mime, c2pa = _mime(path), _lib()
    anchors = _anchors(path, public_raw)
    # Anchors replace any built-in trust list; nothing is fetched (no remote manifest, no OCSP).
    trust = {"trust": {"trust_anchors": anchors}} if anchors else {}
    verify = {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True}
    settings = {"verify": verify, **trust}
    try:
        with path.open("rb") as f:
            context = c2pa.Context.from_dict(settings)
            if (reader := c2pa.Reader.try_create(mime, f, None, context)) is None:
                return "no C2PA manifest"
            with reader:
                store = json.loads(reader.json())
    except (c2pa.C2paError, ValueError) as exc:
        return f"C2PA manifest unreadable: {' '.join(str(exc).split())}"
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failed = _codes(results.get("failure")) | _codes(store.get("validation_status"))
    if bad := sorted(failed - {"signingCredential.untrusted"}):
        return f"C2PA validation failed: {', '.join(bad)}"
    if not anchors or "signingCredential.trusted" not in _codes(results.get("success")):
        return "C2PA manifest signed by another key"
    active = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
    if [g.get("name") for g in active.get("claim_generator_info") or []][:1] != ["Veil"]:
        return "C2PA manifest not made by Veil"
    actions = [
        (act.get("action"), act.get("description"))
        for claim in active.get("assertions") or []
        if str(claim.get("label", "")).startswith("c2pa.actions")
        for act in (claim.get("data") or {}).get("actions") or []
    ]
    return None if ("c2pa.edited", ACTION) in actions else f"C2PA manifest lacks {ACTION!r}"
