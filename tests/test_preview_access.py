"""Who may see the preview: the gate's rate limit and its bounded memory, the token file and the
TLS key kept like the device key (0600, folder 0700, refused when others can read them), and
HTTPS that serves exactly the certificate whose fingerprint `veil preview url` prints."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import ssl
import stat
import threading
import time
from email.message import Message
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from preview_helpers import (
    COOKIE,
    TOKEN,
    boundary_of,
    read_part,
    request,
    running,
    token_never_printed,  # noqa: F401 (an autouse fixture)
)

from edge.errors import AuditError
from edge.sinks.preview import TOKEN_NAME, Gate, load_or_create_cert, load_or_create_token
from edge.sinks.preview.access import FAILURES, MAX_TRACKED, WINDOW_S
from edge.sinks.preview.tls import fingerprint_of

# --- the gate ---------------------------------------------------------------------------------


def test_guessing_is_rate_limited_per_address() -> None:
    with running() as server:
        for _ in range(3 * FAILURES):  # asking without a token is not guessing
            assert request(server, "/status.json")[0] == 401
        wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
        for _ in range(FAILURES):
            assert request(server, "/status.json", wrong)[0] == 401
        # Now even the right token is turned away, unchecked, from that address...
        status, response, _ = request(server, "/status.json", COOKIE)
        assert status == 429 and response.getheader("Retry-After") == str(round(WINDOW_S))
        assert request(server, f"/?token={TOKEN}")[0] == 429
        # ...and only from that one.
        assert request(server, "/status.json", COOKIE, source_ip="127.0.0.2")[0] == 200
        stats = server.stats()
        assert stats["limited"] == 2 and stats["refused"] == 3 * FAILURES + FAILURES + 2


def _headers(**values: str) -> Message:
    message = Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


def test_the_gate_forgets_after_the_window_and_keeps_a_bounded_table() -> None:
    gate = Gate(TOKEN, tls=True)
    wrong = _headers(Authorization="Bearer nope")
    right = _headers(Cookie=f"a=b; veil_preview={TOKEN}")
    for k in range(FAILURES):
        assert gate.allowed(wrong, {}, "10.0.0.1", now=100.0 + k).status == 401
    assert gate.allowed(right, {}, "10.0.0.1", now=110.0).status == 429
    assert gate.allowed(right, {}, "10.0.0.1", now=100.0 + WINDOW_S - 0.1).status == 429
    assert gate.allowed(right, {}, "10.0.0.1", now=100.0 + WINDOW_S).status == 200  # one aged out
    assert gate.allowed(right, {"token": [TOKEN]}, "10.0.0.9", now=0).via_query
    assert not gate.allowed(right, {}, "10.0.0.9", now=0).via_query
    # A flood of addresses cannot grow the table without bound: the oldest are forgotten.
    gate = Gate(TOKEN, tls=False)
    for _ in range(FAILURES):
        gate.allowed(wrong, {}, "10.0.0.1", now=1.0)
    assert gate.allowed(right, {}, "10.0.0.1", now=2.0).status == 429
    for k in range(MAX_TRACKED):
        gate.allowed(wrong, {}, f"10.1.{k // 256}.{k % 256}", now=3.0)
    assert gate.allowed(right, {}, "10.0.0.1", now=4.0).status == 200
    assert len(gate._failures) <= MAX_TRACKED
    assert gate.set_cookie().endswith("Path=/")
    assert Gate(TOKEN, tls=True).set_cookie().endswith("; Secure")
    assert Gate(None, tls=False).allowed(_headers(), {}, "10.0.0.1").ok  # loopback, no token


# --- TLS ---------------------------------------------------------------------------------------


def test_tls_serves_the_same_certificate_it_fingerprints(tmp_path: Path) -> None:
    files = load_or_create_cert(tmp_path / "keys")
    assert load_or_create_cert(tmp_path / "keys") == files  # reused, not made again
    assert fingerprint_of(files.cert) == files.fingerprint
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", files.fingerprint)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert socket.gethostname() in names.get_values_for_type(x509.DNSName) + ["localhost"]
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650

    with running(tls=files) as server:
        host, port = server.address
        stalled = socket.create_connection((host, port))  # a handshake that never comes
        context = ssl.create_default_context(cafile=str(files.cert))  # verifies name and chain
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
        conn.request("GET", f"/?token={TOKEN}")
        response = conn.getresponse()
        response.read()
        assert response.status == 303
        assert response.getheader("Set-Cookie", "").endswith("; Secure")
        assert conn.sock is not None
        der = conn.sock.getpeercert(binary_form=True)
        assert der is not None
        digest = hashlib.sha256(der).hexdigest().upper()
        assert ":".join(digest[i : i + 2] for i in range(0, 64, 2)) == files.fingerprint
        conn.request("GET", "/stream.mjpg", headers=COOKIE)
        response = conn.getresponse()
        _, jpeg = read_part(response, boundary_of(response))
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
        conn.close()
        plain = http.client.HTTPConnection(host, port, timeout=5)  # HTTP to the HTTPS port
        with pytest.raises((OSError, http.client.HTTPException)):
            plain.request("GET", "/", headers=COOKIE)
            plain.getresponse().read()
        plain.close()
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 3.0
        stalled.close()


def test_a_certificate_that_lost_its_key_is_made_again(tmp_path: Path) -> None:
    files = load_or_create_cert(tmp_path)
    other = load_or_create_cert(tmp_path / "other")
    files.cert.write_bytes(other.cert.read_bytes())  # a stray certificate for another key
    again = load_or_create_cert(tmp_path)
    key = serialization.load_pem_private_key(files.key.read_bytes(), None)
    served = x509.load_pem_x509_certificate(again.cert.read_bytes())
    assert served.public_key() == key.public_key() and again.fingerprint != other.fingerprint


# --- the token file ------------------------------------------------------------------------------


def test_the_token_is_made_once_and_kept_private(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    token, created = load_or_create_token(folder)
    assert created and re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    path = folder / TOKEN_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert load_or_create_token(folder) == (token, False)
    assert [p.name for p in folder.iterdir()] == [TOKEN_NAME]  # no temporary file left

    os.chmod(path, 0o640)
    with pytest.raises(AuditError, match="chmod 600") as caught:
        load_or_create_token(folder)
    assert token not in str(caught.value)
    os.chmod(path, 0o600)
    os.chmod(folder, 0o770)
    with pytest.raises(AuditError, match="chmod 700"):
        load_or_create_token(folder)
    os.chmod(folder, 0o700)
    path.write_text("not a token\n")
    with pytest.raises(AuditError, match="not a preview token"):
        load_or_create_token(folder)


def test_racing_first_runs_agree_on_one_token(tmp_path: Path) -> None:
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_or_create_token(tmp_path)[0]))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
