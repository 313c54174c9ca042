"""`veil run --preview` end to end: a real child process playing a clip of real faces as a
camera, the page served on loopback and read by a real HTTP client. Every picture it serves is
checked against the source frame it came from with the face-detail measure."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest

from conftest import Clip, veil
from edge.bench.client import free_port
from helpers.outputs import (
    FAST,
    THOROUGH,
    assert_protected,
    get,
    mjpeg_parts,
    slow_run_ended,
    source_frames,
    token_of,
    wait_listening,
    write_profile,
)
from helpers.runs import records, spawn, verify


@pytest.mark.slow
def test_the_preview_serves_only_redacted_frames_and_nothing_without_the_token(
    sample_clip: Clip, tmp_path: Path
) -> None:
    profile = write_profile(tmp_path, "thorough", THOROUGH)
    keys, out, port = tmp_path / "keys", tmp_path / "rec", free_port()
    token = token_of(keys, port)
    proc = spawn(
        "run", "--config", profile, "--source", f"file:{sample_clip.path}", "--realtime",
        "--loop", "--duration", "12", "--output-dir", out, "--key-dir", keys,
        "--preview", f"127.0.0.1:{port}",
    )  # fmt: skip
    try:
        wait_listening(port, proc)
        # Without the token: 401 and no picture, for each of the three things served.
        for path in ("/", "/stream.mjpg", "/status.json", "/?token=wrong" + token[5:]):
            status, body, _ = get(port, path)
            assert status == 401, path
            assert b"\xff\xd8" not in body and b"frames_in" not in body
        # The token once in the URL: a cookie, and the page without the token in its address.
        status, _, head = get(port, f"/?token={token}")
        assert status == 303 and head["Location"] == "/"
        cookie = head["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in head["Set-Cookie"] and "SameSite=Lax" in head["Set-Cookie"]
        status, page, _ = get(port, "/", {"Cookie": cookie})
        assert status == 200 and b"/stream.mjpg" in page
        parts = mjpeg_parts(port, {"Cookie": cookie}, wanted=4)
        status, body, _ = get(port, "/status.json", {"Cookie": cookie})
        assert status == 200 and json.loads(body)["frames_in"] > 0
    finally:
        stdout, stderr = proc.communicate(timeout=120)
    assert slow_run_ended(proc.returncode, stderr), stderr
    assert len(parts) >= 4
    sources = source_frames(sample_clip)
    for index, picture in parts:
        assert max(picture.shape[:2]) == 640  # the preview's size, not the recording's
        assert_protected(index, picture, sources, sample_clip)
    # The token is in no line the run wrote, nor in its log or status.
    for text in (
        stdout,
        stderr,
        (out / "veil-audit.jsonl").read_text(),
        (out / "status.json").read_text(),
    ):
        assert token not in text
    assert f"127.0.0.1:{port}" in stderr  # the address is shown, without the token
    recs = records(out / "veil-audit.jsonl")
    start = next(r for r in recs if r["type"] == "output_start")
    assert (start["output"], start["bound"], start["protocol"], start["token"]) == (
        "preview", "loopback", "http", True,
    )  # fmt: skip
    stop = next(r for r in recs if r["type"] == "output_stop")
    assert stop["output"] == "preview" and stop["refused"] >= 4 and stop["frames"] >= 4
    assert recs.index(stop) < len(recs) - 1 and recs[-1]["type"] == "run_stop"
    assert verify(out).returncode == 0


def test_a_preview_open_to_the_network_without_a_token_is_refused(
    sample_clip: Clip, tmp_path: Path
) -> None:
    source = f"file:{sample_clip.path}"
    open_ = write_profile(tmp_path, "open", "[preview]\nrequire_token = false\n")
    ran = veil(
        "run", "--config", open_, "--source", source, "--output-dir", tmp_path / "o",
        "--preview", "0.0.0.0:8088",
    )  # fmt: skip
    assert ran.returncode == 2
    assert ran.stderr.count("\n") == 1 and "without a token" in ran.stderr
    assert not (tmp_path / "o").exists()  # refused before anything was opened or written
    in_file = write_profile(
        tmp_path, "bound", '[preview]\nbind = "0.0.0.0:8088"\nrequire_token = false\n'
    )
    checked = veil("check-config", in_file)
    assert checked.returncode == 2 and "require_token" in checked.stdout + checked.stderr
    for bad in ("camera.local:80", "127.0.0.1:99999", "nonsense"):
        ran = veil("run", "--source", source, "--output-dir", tmp_path / "o", "--preview", bad)
        assert ran.returncode == 2 and ran.stderr.count("\n") == 1, (bad, ran.stderr)


@pytest.mark.slow
def test_a_client_reading_at_1_kb_a_second_costs_the_recording_no_frame(
    sample_clip: Clip, tmp_path: Path
) -> None:
    profile = write_profile(tmp_path, "fast", FAST)
    keys, out, port = tmp_path / "keys", tmp_path / "rec", free_port()
    token = token_of(keys, port)
    proc = spawn(
        "run", "--config", profile, "--source", f"file:{sample_clip.path}", "--realtime",
        "--loop", "--duration", "8", "--output-dir", out, "--key-dir", keys,
        "--preview", f"127.0.0.1:{port}",
    )  # fmt: skip
    received = 0
    try:
        wait_listening(port, proc)
        # A client that reads 100 bytes every 0.1 s for the rest of the run.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/stream.mjpg", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        assert response.status == 200
        while proc.poll() is None:
            try:
                chunk = response.read1(100)
            except OSError:
                break
            if not chunk:
                break
            received += len(chunk)
            time.sleep(0.1)
        conn.close()
    finally:
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert received > 500  # it did read, slowly
    status = json.loads((out / "status.json").read_text())
    # The recording lost nothing to the slow reader: every frame the clip played is recorded.
    assert status["dropped"] == 0, status["fail_closed"]
    assert status["frames_out"] == status["frames_in"] >= 200


def test_preview_url_prints_https_and_the_certificates_fingerprint(tmp_path: Path) -> None:
    from edge.sinks.preview import load_or_create_cert

    keys = tmp_path / "keys"
    profile = write_profile(tmp_path, "tls", '[preview]\nbind = "0.0.0.0:8443"\ntls = true\n')
    shown = veil("preview", "url", "--config", profile, "--key-dir", keys)
    assert shown.returncode == 0, shown.stderr
    url, fingerprint = shown.stdout.strip().splitlines()
    assert url.startswith("https://") and ":8443/?token=" in url
    cert = load_or_create_cert(keys)
    assert fingerprint == f"certificate SHA-256 fingerprint: {cert.fingerprint}"
    again = veil("preview", "url", "--config", profile, "--key-dir", keys)
    assert again.stdout == shown.stdout  # the same token and certificate, kept
    token = url.partition("?token=")[2]
    assert token not in shown.stderr
