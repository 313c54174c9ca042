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

from edge.errors import AuditError
from edge.sinks.preview import (
    TOKEN_NAME,
    Gate,
    PreviewServer,
    load_or_create_cert,
    load_or_create_token,
)
from edge.sinks.preview.access import FAILURES, MAX_CANDIDATES, MAX_TRACKED, WINDOW_S
from edge.sinks.preview.tls import fingerprint_of
from helpers.preview import (
    COOKIE,
    TOKEN,
    boundary_of,
    hang_up,
    open_stream,
    read_part,
    request,
    running,
    token_never_printed,  # noqa: F401 (an autouse fixture)
    wait_until,
)

# --- the gate ---------------------------------------------------------------------------------


def test_wrong_tokens_are_limited_per_address_and_the_right_one_always_passes() -> None:
    with running() as server:
        for _ in range(3 * FAILURES):  # asking without a token presents nothing to count
            assert request(server, "/status.json")[0] == 401
        wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
        for _ in range(FAILURES):
            assert request(server, "/status.json", wrong)[0] == 401
        status, response, _ = request(server, "/status.json", wrong)
        assert status == 429 and response.getheader("Retry-After") == str(round(WINDOW_S))
        assert response.getheader("Connection") == "close"  # a flood connects again each time
        assert request(server, "/status.json")[0] == 429  # nor may it ask without one
        # The limit is no lock-out: the right token from that very address is served...
        assert request(server, "/status.json", COOKIE)[0] == 200
        assert request(server, f"/?token={TOKEN}")[0] == 303
        # ...and it limits only that address.
        assert request(server, "/status.json", wrong, source_ip="127.0.0.2")[0] == 401
        stats = server.stats()
        assert stats["limited"] == 2 and stats["refused"] == 3 * FAILURES + FAILURES + 3


def test_every_token_a_request_presents_counts() -> None:
    wrong = ["w" * len(TOKEN), "v" * len(TOKEN), "u" * len(TOKEN)]
    three = {
        "Cookie": f"veil_preview={wrong[0]}; veil_preview={wrong[1]}",
        "Authorization": f"Bearer {wrong[2]}",
    }
    assert 3 <= MAX_CANDIDATES  # two cookies and a bearer: not too many to count
    with running() as server:
        for _ in range(FAILURES // 3):
            assert request(server, "/status.json", three)[0] == 401
        for _ in range(FAILURES % 3):
            assert request(server, f"/status.json?token={wrong[0]}")[0] == 401
        # FAILURES wrong tokens in FAILURES // 3 + FAILURES % 3 requests: the next is limited.
        assert request(server, "/status.json", three)[0] == 429
        assert request(server, "/status.json", COOKIE)[0] == 200

        # The 99,000 wrong tokens in one request: refused unread, and every one counts.
        line = "; ".join(f"veil_preview={k}" for k in range(3000))
        raw = (
            "GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Cookie: {line}\r\n" * 33
            + f"Authorization: Bearer {TOKEN}\r\n\r\n"  # the right one among them
        )
        with socket.create_connection(server.address, source_address=("127.0.0.3", 0)) as sock:
            sock.sendall(raw.encode())
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:40]
        assert b"Connection: close" in answer and b"\xff\xd8" not in answer
        one_wrong = {"Cookie": f"veil_preview={wrong[0]}"}
        assert request(server, "/status.json", one_wrong, source_ip="127.0.0.3")[0] == 429
        assert request(server, "/status.json", COOKIE, source_ip="127.0.0.3")[0] == 200


def test_the_right_token_is_served_during_a_flood_of_wrong_ones() -> None:
    """One user behind a shared address (an SSH tunnel's 127.0.0.1) floods wrong tokens; the
    owner, from the same address, is served every time, the picture too."""
    stop = threading.Event()
    flooded: list[int] = []

    def flood(server: PreviewServer) -> None:
        wrong = {"Cookie": "veil_preview=" + "f" * len(TOKEN)}
        while not stop.is_set():
            flooded.append(request(server, "/status.json", wrong)[0])

    with running() as server:
        flooders = [threading.Thread(target=flood, args=(server,)) for _ in range(2)]
        for thread in flooders:
            thread.start()
        try:
            wait_until(lambda: flooded.count(429) >= 20)
            for _ in range(20):
                assert request(server, "/status.json", COOKIE)[0] == 200
                assert request(server, "/", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
            conn, response = open_stream(server)
            try:
                assert response.status == 200
                _, jpeg = read_part(response, boundary_of(response))
                assert jpeg.startswith(b"\xff\xd8")
            finally:
                hang_up(conn, response)
        finally:
            stop.set()
            for thread in flooders:
                thread.join(10)
        assert set(flooded) == {401, 429} and server.stats()["limited"] >= 20


def _headers(*pairs: tuple[str, str]) -> Message:
    message = Message()
    for name, value in pairs:
        message[name] = value
    return message


def test_the_gate_forgets_after_the_window_and_keeps_a_bounded_table() -> None:
    gate = Gate(TOKEN, tls=True)
    wrong = _headers(("Authorization", "Bearer nope"))
    right = _headers(("Cookie", f"a=b; veil_preview={TOKEN}"))
    for k in range(FAILURES):
        assert gate.allowed(wrong, {}, "10.0.0.1", now=100.0 + k).status == 401
    assert gate.allowed(wrong, {}, "10.0.0.1", now=110.0).status == 429
    assert gate.allowed(right, {}, "10.0.0.1", now=110.5).status == 200  # never locked out
    # The wrong ones while limited count too: the limit lasts as long as the flood.
    for k in range(1, FAILURES):
        assert gate.allowed(wrong, {}, "10.0.0.1", now=110.0 + k).status == 429
    assert gate.allowed(_headers(), {}, "10.0.0.1", now=110.0 + WINDOW_S - 0.5).status == 429
    assert gate.allowed(_headers(), {}, "10.0.0.1", now=110.0 + WINDOW_S).status == 401
    assert gate.allowed(right, {"token": [TOKEN]}, "10.0.0.9", now=0).via_query
    assert not gate.allowed(right, {}, "10.0.0.9", now=0).via_query
    # Every candidate is looked at: the right one after wrong ones, wherever it is.
    mixed = _headers(("Cookie", "veil_preview=stale"), ("Authorization", f"Bearer {TOKEN}"))
    assert gate.allowed(mixed, {"token": ["old"]}, "10.0.0.8", now=0).status == 200
    crowded = _headers(*[("Cookie", f"veil_preview={TOKEN}")] * (MAX_CANDIDATES + 1))
    assert gate.allowed(crowded, {}, "10.0.0.7", now=0).status == 400  # right ones, unread
    for _ in range(FAILURES - (MAX_CANDIDATES + 1)):  # the crowd counted as many
        assert gate.allowed(wrong, {}, "10.0.0.7", now=1).status == 401
    assert gate.allowed(wrong, {}, "10.0.0.7", now=1).status == 429
    # A flood of addresses cannot grow the table without bound: the oldest are forgotten.
    gate = Gate(TOKEN, tls=False)
    for _ in range(FAILURES):
        gate.allowed(wrong, {}, "10.0.0.1", now=1.0)
    assert gate.allowed(wrong, {}, "10.0.0.1", now=2.0).status == 429
    for k in range(MAX_TRACKED):
        gate.allowed(wrong, {}, f"10.1.{k // 256}.{k % 256}", now=3.0)
    assert gate.allowed(wrong, {}, "10.0.0.1", now=4.0).status == 401
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
