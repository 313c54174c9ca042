"""Credentials reach nothing that Veil writes or shows. A camera or NVR password, a token in a
query or in a camera's path, given in the profile or on the command line, is looked for, as an
attacker would, in everything each command leaves: stdout, stderr, the audit log, the status
file, the recordings, `veil eval`'s reports, the preview's served status, and the command lines
of Veil and its children in /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, Clip, veil
from edge.audit.settings import flat_settings, public_config
from edge.bench.client import free_port
from edge.capture.urls import gst_label, masked, safe_url
from edge.config import Config
from helpers.outputs import get, token_of, wait_listening, write_profile
from helpers.rtsp import CREDS, FPS, PASSWORD, SERVER, SYSTEM_PYTHON, USER, H, RtspServer, W
from helpers.runs import spawn, wait_for_frames

# Distinctive, so that a hit anywhere is a leak and nothing else.
CAM_USER, CAM_PW, CAM_TOKEN = "camuser7q", "CamPw9xZ", "CamTok4kR"
NVR_PW, NVR_TOKEN = "NvrPw3mW", "NvrTok8vB"
SECRETS = (CAM_USER, CAM_PW, CAM_TOKEN, NVR_PW, NVR_TOKEN)


def leaks(*texts: str | bytes, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Each secret found in any of `texts`."""
    found = []
    for text in texts:
        data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
        found += [s for s in secrets if s.encode() in data]
    return found


def folder_leaks(folder: Path, secrets: tuple[str, ...] = SECRETS) -> dict[str, list[str]]:
    return {
        str(p.relative_to(folder)): hit
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (hit := leaks(p.read_bytes(), secrets=secrets))
    }


# --- what a URL or a setting shows -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (f"rtsp://{CAM_USER}:{CAM_PW}@10.0.0.9/h264", "rtsp://***@10.0.0.9/h264"),
        (f"rtsp://10.0.0.9:554/h264?token={CAM_TOKEN}", "rtsp://10.0.0.9:554/h264?***"),
        (f"RTSP://{CAM_USER}:{CAM_PW}@[::1]:8554/x#{CAM_TOKEN}", "rtsp://***@[::1]:8554/x#***"),
        (f"rtsp://{CAM_USER}:a%40{CAM_PW}@cam.local/live", "rtsp://***@cam.local/live"),
        # A password with an unencoded / or ? would otherwise show its start as a host or port.
        (f"rtsp://{CAM_USER}:12/{CAM_PW}@10.0.0.9/x", "rtsp://***@(unparsable)"),
        (f"rtsp://{CAM_USER}:12?{CAM_PW}@10.0.0.9/x", "rtsp://***@(unparsable)"),
        (f"rtsp://{CAM_USER}:{CAM_PW}@10.0.0.9:99999/x", "rtsp://***@(unparsable)"),
        # Cameras that take credentials in the path.
        (
            f"rtsp://10.0.0.9:554/user={CAM_USER}_password={CAM_PW}_channel=1_stream=0.sdp",
            "rtsp://10.0.0.9:554/user=***",
        ),
        (f"http://10.0.0.9/cgi;auth={CAM_PW}/mjpg", "http://10.0.0.9/cgi;auth=***/mjpg"),
    ],
)
def test_a_url_shows_that_credentials_were_set_and_never_what_they_are(
    given: str, expected: str
) -> None:
    assert safe_url(given) == expected
    assert masked(given) == expected
    assert masked(expected) == expected  # masking twice changes nothing


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            f"rtspsrc location=rtsp://{CAM_USER}:{CAM_PW}@h/x user-id={CAM_USER} "
            f"user-pw={CAM_PW} ! decodebin",
            "rtspsrc location=rtsp://***@h/x user-id=*** user-pw=*** ! decodebin",
        ),
        (f"{CAM_USER}:{CAM_PW}@10.0.0.9", "***@10.0.0.9"),  # a URL without its scheme
        (f"rtsp:/{CAM_USER}:{CAM_PW}@10.0.0.9/x", "rtsp:/***@10.0.0.9/x"),  # one slash short
        (f"webcam?password={CAM_PW}", "webcam?***"),
        (f"ptz:4;password={CAM_PW}", "ptz:4;password=***"),
        ("picamera2:1", "picamera2:1"),
        ("v4l2:/dev/video0", "v4l2:/dev/video0"),
        ("file:/data/clip.mp4", "file:/data/clip.mp4"),
        ("127.0.0.1:8088", "127.0.0.1:8088"),
        ("-", "-"),
    ],
)
def test_free_text_is_masked_only_where_it_holds_a_credential(given: str, expected: str) -> None:
    assert masked(given) == expected


def test_a_pipeline_label_is_its_first_element() -> None:
    assert gst_label(f"rtspsrc location=rtsp://{CAM_USER}:{CAM_PW}@h/x ! x") == "gst:rtspsrc"
    assert gst_label(f"rtsp://{CAM_USER}:{CAM_PW}@h/x") == "gst:rtsp://***@h/x"


def test_the_published_settings_and_config_hash_hold_no_credential() -> None:
    cfg = Config.model_validate(
        {
            "live": {"source": f"rtsp://{CAM_USER}:{CAM_PW}@10.0.0.9/h264?token={CAM_TOKEN}"},
            "stream_out": {"url": f"rtsp://nvr:{NVR_PW}@127.0.0.1:8554/veil?jwt={NVR_TOKEN}"},
        }
    )
    settings = flat_settings(cfg)
    assert settings["live.source"] == "rtsp://***@10.0.0.9/h264?***"
    assert settings["stream_out.url"] == "rtsp://***@127.0.0.1:8554/veil?***"
    assert leaks(json.dumps(settings)) == []
    # The raw config's hash would let anyone test password guesses against it offline.
    assert public_config(cfg).sha256() != cfg.sha256()
    assert public_config(Config()).sha256() == Config().sha256()


# --- the commands, end to end ------------------------------------------------------------------

SECRET_PROFILE = f"""
[live]
source = "rtsp://{CAM_USER}:{CAM_PW}@10.0.0.9/h264?token={CAM_TOKEN}"
[stream_out]
url = "rtsp://nvr:{NVR_PW}@127.0.0.1:1/veil?password={NVR_TOKEN}"
"""


def test_veil_redact_with_a_profile_holding_passwords_logs_none(
    sample_clip: Clip, tmp_path: Path
) -> None:
    profile = write_profile(tmp_path, "secret", SECRET_PROFILE)
    out = tmp_path / "out"
    ran = veil("redact", sample_clip.path, "-o", out, "--config", profile)
    assert ran.returncode == 0, ran.stderr
    shown_ = veil("audit", "show", out / "veil-audit.jsonl")
    checked = veil("audit", "verify", out / "veil-audit.jsonl", "--media", out)
    assert checked.returncode == 0, checked.stdout
    texts = [ran.stdout, ran.stderr, shown_.stdout, shown_.stderr, checked.stdout, checked.stderr]
    assert leaks(*texts) == [] and folder_leaks(out) == {}
    start = json.loads((out / "veil-audit.jsonl").read_text().splitlines()[0])
    # What the log needs stays: the kind of source, where, and that credentials were given.
    assert start["settings"]["live.source"] == "rtsp://***@10.0.0.9/h264?***"
    assert start["settings"]["stream_out.url"] == "rtsp://***@127.0.0.1:1/veil?***"


def test_a_long_setting_is_cut_to_fit_the_log_not_refused(
    sample_clip: Clip, tmp_path: Path
) -> None:
    """A profile check-config accepts (a 300-character file path) must not fail every run."""
    profile = write_profile(tmp_path, "long", f'[live]\nsource = "file:/{"d" * 300}/x.mp4"\n')
    ran = veil("redact", sample_clip.path, "-o", tmp_path / "out", "--config", profile)
    assert ran.returncode == 0, ran.stderr
    start = json.loads((tmp_path / "out" / "veil-audit.jsonl").read_text().splitlines()[0])
    assert len(start["settings"]["live.source"]) == 200
    assert start["settings"]["live.source"].endswith("...(cut)")


def test_check_config_and_bad_sources_print_no_credential(tmp_path: Path) -> None:
    bad = write_profile(
        tmp_path,
        "bad",
        f'[live]\nsource = "rtsp://{CAM_USER}:{CAM_PW}@10.0.0.9/x"\nfps = 0\n'
        f'[stream_out]\nurl = "http://nvr:{NVR_PW}@10.0.0.1/x?token={NVR_TOKEN}"\n'
        # A credential in a setting meant for none, whose error quotes the value.
        f'[preview]\nbind = "{CAM_USER}:{CAM_PW}@10.0.0.1:80"\n',
    )
    checked = veil("check-config", bad)
    assert checked.returncode == 2 and "stream_out.url" in checked.stderr
    assert "preview.bind: '***@10.0.0.1:80'" in checked.stderr
    ran = veil("run", "--config", bad, "--output-dir", tmp_path / "rec")
    assert ran.returncode == 2
    preview = veil("run", "--preview", f"http://{CAM_USER}:{CAM_PW}@10.0.0.1:80")
    assert preview.returncode == 2
    texts = [checked.stdout, checked.stderr, ran.stdout, ran.stderr, preview.stderr]
    for source in (f"{CAM_USER}:{CAM_PW}@10.0.0.9", f"webcam?password={CAM_PW}&t={CAM_TOKEN}"):
        unknown = veil("run", "--source", source, "--output-dir", tmp_path / "rec")
        assert unknown.returncode == 2 and "unknown source" in unknown.stderr
        assert len(unknown.stderr.strip().splitlines()) == 1
        texts += [unknown.stdout, unknown.stderr]
    assert leaks(*texts) == []
    assert not (tmp_path / "rec").exists()


def test_veil_eval_reports_hold_no_credential(astronaut: np.ndarray, tmp_path: Path) -> None:
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    assert cv2.imwrite(str(root / "images" / "a.png"), astronaut)
    h, w = astronaut.shape[:2]
    (root / "annotations.json").write_text(
        json.dumps(
            {
                "format": "faceblur-eval/1",
                "images": [
                    {
                        "file": "images/a.png",
                        "width": w,
                        "height": h,
                        "exhaustive": True,
                        "faces": [list(ASTRONAUT_FACE)],
                    }
                ],
                "videos": [],
            }
        ),
        encoding="utf-8",
    )
    profile = write_profile(tmp_path, "secret", SECRET_PROFILE)
    report = tmp_path / "r.json"
    ran = veil("eval", root, "--config", profile, "--json", report, "--chart", tmp_path / "c.html")
    assert ran.returncode == 0, ran.stderr
    pages = [report.read_bytes(), (tmp_path / "c.html").read_bytes()]
    assert leaks(ran.stdout, ran.stderr, *pages) == []
    assert json.loads(report.read_text())["config"]["live"]["source"].startswith("rtsp://***@")


# --- a live run against a real password-protected RTSP camera ---------------------------------

LIVE = """
[detector]
backend = "blazeface"
[detector.blazeface]
model = "short"
tiles = 0
[live]
source = "{source}"
max_latency_ms = 2000.0
queue = 8
[record]
segment_seconds = 2.0
fragment_seconds = 0.5
preset = "ultrafast"
min_free_bytes = 0
[audit]
summary_seconds = 1.0
"""


@pytest.fixture
def camera(tmp_path: Path, astronaut: np.ndarray) -> Iterator[RtspServer]:
    """GStreamer's RTSP server on loopback, asking for USER and PASSWORD (skipped, or failed on
    CI, where it cannot run, as in tests/system/test_live_network.py)."""
    check = subprocess.run(
        [SYSTEM_PYTHON, str(SERVER), "--check"], capture_output=True, text=True, timeout=60
    )
    if check.returncode != 0:
        reason = f"RTSP test server unavailable: {(check.stdout + check.stderr).strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    still = cv2.resize(astronaut, (W, H), interpolation=cv2.INTER_AREA)
    frames = tmp_path / "clip.bgr"
    frames.write_bytes(b"".join(np.roll(still, 8 * i, axis=1).tobytes() for i in range(FPS)))
    server = RtspServer(frames, auth=True)
    try:
        yield server
    finally:
        server.kill()


def _cmdlines(pid: int) -> list[bytes]:
    """The command lines of `pid` and its children, as any user of the machine reads them."""
    lines = [Path(f"/proc/{pid}/cmdline").read_bytes()]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        try:
            lines.append(Path(f"/proc/{child}/cmdline").read_bytes())
        except OSError:
            pass  # a stream-out child that ended meanwhile
    return lines


@pytest.mark.slow
def test_a_live_run_with_credentials_everywhere_leaks_none(
    camera: RtspServer, tmp_path: Path
) -> None:
    """The camera's user, password and token in the profile; the NVR's password and token on
    the command line (a stream out that is refused, so it reconnects); the preview on."""
    secrets = (*SECRETS, USER, PASSWORD, PASSWORD.replace("@", "%40"))
    source = camera.url(CREDS, f"?token={CAM_TOKEN}")
    profile = write_profile(tmp_path, "live", LIVE.format(source=source))
    profile.chmod(0o644)
    keys, out, port = tmp_path / "keys", tmp_path / "rec", free_port()
    token = token_of(keys, port)
    stream = f"rtsp://nvr:{NVR_PW}@127.0.0.1:{free_port()}/veil?password={NVR_TOKEN}"
    proc = spawn(
        "run", "--config", profile, "--output-dir", out, "--key-dir", keys,
        "--preview", f"127.0.0.1:{port}", "--stream-out", stream, "--duration", "30",
    )  # fmt: skip
    try:
        wait_listening(port, proc)
        wait_for_frames(out / "status.json", 15)
        cmdlines = _cmdlines(proc.pid)
        bearer = {"Authorization": f"Bearer {token}"}
        served = [get(port, path, bearer)[1] for path in ("/status.json", "/")]
        status = [
            veil("status", out / "status.json"),
            veil("status", "--json", out / "status.json"),
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    shown_ = veil("audit", "show", out / "veil-audit.jsonl")
    checked = veil("audit", "verify", out / "veil-audit.jsonl", "--media", out)
    assert checked.returncode == 0, checked.stdout
    texts = [stdout, stderr, *cmdlines, *served, shown_.stdout, checked.stdout]
    texts += [t for s in status for t in (s.stdout, s.stderr)]
    assert leaks(*texts, secrets=secrets) == []
    assert folder_leaks(out, secrets) == {}
    # It did record the camera, and says what it needs to: which one, and that it had a password.
    assert json.loads(served[0])["source"] == camera.url("***@", "?***")
    assert json.loads(served[0])["frames_out"] >= 15
    assert b"--stream-out\0rtsp://***@127.0.0.1:" in cmdlines[0]
    assert "--stream-out holds credentials" in stderr and "stream out lost" in stderr
    assert f"{profile} holds credentials and any user" in stderr
