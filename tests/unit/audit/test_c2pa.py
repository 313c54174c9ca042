"""C2PA manifests on real MP4, JPEG and PNG files: signed offline by the device key, read back
valid, bound to that key, broken by a flipped media byte, and free of anything but the claim."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization

from edge.audit.c2pa import (
    CERT_NAME,
    SOURCE_TYPE,
    available,
    check_file,
    device_certificate,
    sign_file,
)
from edge.audit.keys import DeviceKey, load_or_create, raw_public
from edge.errors import UsageError

c2pa = pytest.importorskip("c2pa")  # the optional extra; the test extra installs it

MIME = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".png": "image/png"}
SUFFIXES = sorted(MIME)


def _picture() -> np.ndarray:
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, :, 0] = np.arange(64, dtype=np.uint8)[None, :] * 4
    img[:, :, 1] = np.arange(64, dtype=np.uint8)[:, None] * 3
    return img


def _write(path: Path) -> Path:
    if path.suffix != ".mp4":
        assert cv2.imwrite(str(path), _picture())
        return path
    with av.open(str(path), "w") as box:
        stream = box.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.roll(_picture(), i * 4, axis=1), format="bgr24")
            box.mux(stream.encode(frame))
        box.mux(stream.encode())
    return path


def _frames(path: Path) -> int:
    if path.suffix != ".mp4":
        return 0 if cv2.imread(str(path)) is None else 1
    with av.open(str(path)) as box:
        return sum(1 for _ in box.decode(video=0))


@pytest.fixture
def key(tmp_path: Path) -> DeviceKey:
    return load_or_create(tmp_path / "keys")[0]


@pytest.fixture(params=SUFFIXES)
def signed(request: pytest.FixtureRequest, tmp_path: Path, key: DeviceKey) -> Path:
    src = _write(tmp_path / f"in{request.param}")
    dst = tmp_path / f"out{request.param}"
    before = src.read_bytes()
    sign_file(src, dst, key, "1.2.3")
    assert src.read_bytes() == before  # the source is never touched
    return dst


def _store(path: Path) -> dict[str, object]:
    with path.open("rb") as f, c2pa.Reader(MIME[path.suffix], f) as reader:
        store: dict[str, object] = json.loads(reader.json())
    return store


def test_available() -> None:
    assert available()


def test_signed_file_checks_and_still_decodes(signed: Path, key: DeviceKey) -> None:
    assert check_file(signed, raw_public(key.public)) is None
    assert _frames(signed) == (12 if signed.suffix == ".mp4" else 1)


def _media_offset(data: bytes, suffix: str) -> int:
    """An offset inside the coded pixels, away from the manifest."""
    if suffix == ".mp4":
        at = 0  # walk the top-level boxes to the middle of `mdat`
        while data[at + 4 : at + 8] != b"mdat":
            at += int.from_bytes(data[at : at + 4], "big")
        return at + 8 + (int.from_bytes(data[at : at + 4], "big") - 8) // 2
    if suffix == ".png":
        return data.index(b"IDAT") + 4 + 5
    return data.rindex(b"\xff\xd9") - 10  # JPEG: entropy-coded data just before EOI


def test_a_flipped_media_byte_is_a_mismatch(signed: Path, key: DeviceKey) -> None:
    data = bytearray(signed.read_bytes())
    data[_media_offset(bytes(data), signed.suffix)] ^= 0x01
    signed.write_bytes(bytes(data))
    reason = check_file(signed, raw_public(key.public))
    assert reason is not None and "mismatch" in reason, reason
    assert "\n" not in reason


def test_another_key_is_refused(signed: Path, tmp_path: Path) -> None:
    other = load_or_create(tmp_path / "other-keys")[0]
    assert check_file(signed, raw_public(other.public)) == "C2PA manifest signed by another key"


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_unsigned_file_has_no_manifest(tmp_path: Path, key: DeviceKey, suffix: str) -> None:
    plain = _write(tmp_path / f"plain{suffix}")
    assert check_file(plain, raw_public(key.public)) == "no C2PA manifest"


def test_manifest_says_only_what_it_must(signed: Path) -> None:
    store = _store(signed)
    text = json.dumps(store)
    assert "faces redacted" in text
    assert "regions" not in text and "thumbnail" not in text and "ingredient" not in text
    manifests = store["manifests"]
    assert isinstance(manifests, dict) and len(manifests) == 1
    (active,) = manifests.values()
    assert active["claim_generator_info"][0]["name"] == "Veil"
    assert active["claim_generator_info"][0]["version"] == "1.2.3"
    assert active["title"] == signed.name


def test_certificate_is_made_once_and_reused(key: DeviceKey) -> None:
    old = os.umask(0o077)  # public material: 0644 whatever the umask
    try:
        first = device_certificate(key)
    finally:
        os.umask(old)
    path = key.folder / CERT_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes() == first
    assert device_certificate(key) == first
    text = first.decode()
    assert text.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE" not in text


def test_certificate_of_another_key_is_replaced(key: DeviceKey, tmp_path: Path) -> None:
    other = load_or_create(tmp_path / "other-keys")[0]
    (key.folder / CERT_NAME).write_bytes(device_certificate(other))
    assert device_certificate(key) != device_certificate(other)


def test_refuses_in_place_and_unknown_suffixes(tmp_path: Path, key: DeviceKey) -> None:
    src = _write(tmp_path / "in.png")
    with pytest.raises(UsageError, match="in place"):
        sign_file(src, src, key, "1.2.3")
    with pytest.raises(UsageError):
        sign_file(src, tmp_path / "out.gif", key, "1.2.3")
    assert _frames(src) == 1


def _sign_by_hand(src: Path, dst: Path, key: DeviceKey, chain: bytes, generator: str) -> None:
    """Sign with c2pa directly: a manifest of our choosing under a chain of our choosing."""
    created = {"action": "c2pa.created", "digitalSourceType": SOURCE_TYPE}
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "9"}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [created]}}],
    }
    pem = key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ED25519, chain, pem, None)
    with src.open("rb") as source, dst.open("w+b") as out:
        c2pa.Builder(manifest).sign(c2pa.Signer.from_info(info), "image/png", source, out)


def test_device_certificate_in_another_signers_chain_is_refused(
    tmp_path: Path, key: DeviceKey
) -> None:
    # The device certificate (public) copied into the chain of a claim signed by another key:
    # the file holds a certificate with our key, but that key did not sign.
    other = load_or_create(tmp_path / "other-keys")[0]
    chain = device_certificate(other) + device_certificate(key)
    dst = tmp_path / "forged.png"
    _sign_by_hand(_write(tmp_path / "in.png"), dst, other, chain, "Veil")
    assert check_file(dst, raw_public(key.public)) == "C2PA manifest signed by another key"


def test_claim_must_be_veils_faces_redacted(tmp_path: Path, key: DeviceKey) -> None:
    src = _write(tmp_path / "in.png")
    for generator, reason in [("Other", "not made by Veil"), ("Veil", "lacks 'faces redacted'")]:
        dst = tmp_path / f"{generator}.png"
        _sign_by_hand(src, dst, key, device_certificate(key), generator)
        assert check_file(dst, raw_public(key.public)) == f"C2PA manifest {reason}"
