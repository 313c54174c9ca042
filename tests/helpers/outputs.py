"""What the `veil run` side-output tests share: the profiles they run, a free port, the source
frames of the sample clip, and the leak check of a served or streamed picture against the source
frame it came from."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from conftest import Clip, veil
from edge.cli.run_cmd import CANNOT_KEEP_UP
from edge.evaluate.protection import is_protected

# CenterFace on the whole 720p frame: slow (most live frames are dropped on two cores, and the
# run ends saying it cannot keep up: `slow_run_ended`) but it finds all four faces of the sample
# clip, 30 to 160 px, so that a face kept in a served frame is the output's fault, not the
# detector's.
THOROUGH = """
[detector.centerface]
max_side = 1280
fine_scale = 0.0
[live]
max_latency_ms = 2000.0
[record]
segment_seconds = 2.0
fragment_seconds = 0.5
preset = "ultrafast"
min_free_bytes = 0
"""
# BlazeFace without tiles, with room to wait: fast enough that nothing is dropped even on a
# busy test machine, for the tests about the loop.
FAST = """
[detector]
backend = "blazeface"
[detector.blazeface]
model = "short"
tiles = 0
[live]
max_latency_ms = 2000.0
queue = 8
[record]
segment_seconds = 2.0
fragment_seconds = 0.5
preset = "ultrafast"
min_free_bytes = 0
"""


def slow_run_ended(code: int, stderr: str) -> bool:
    """How a THOROUGH `veil run` may end: well (0), with frames obscured (3), or, on a device
    that cannot search the camera's frames in time, saying so (4)."""
    return code in (0, 3) or (code == CANNOT_KEEP_UP and "veil: error: cannot keep up" in stderr)


def write_profile(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def source_frames(clip: Clip) -> list[np.ndarray]:
    with av.open(str(clip.path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def token_of(keys: Path, port: int) -> str:
    shown = veil("preview", "url", "--key-dir", keys, "--preview", f"127.0.0.1:{port}")
    assert shown.returncode == 0, shown.stderr
    url = shown.stdout.strip().splitlines()[0]
    assert url.startswith(f"http://127.0.0.1:{port}/?token=")
    return urlsplit(url).query.removeprefix("token=")


def wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


def mjpeg_parts(
    port: int, headers: dict[str, str], wanted: int, timeout: float = 60.0
) -> list[tuple[int, np.ndarray]]:
    """(frame index, picture) of `wanted` distinct frames read from /stream.mjpg."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stream.mjpg", headers=headers)
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("multipart/x-mixed-replace")
    parts: dict[int, np.ndarray] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(parts) < wanted and time.monotonic() < deadline:
            line = response.fp.readline()
            if not line:
                break
            if not line.lower().startswith(b"content-type: image/jpeg"):
                continue
            head: dict[str, str] = {}
            while (line := response.fp.readline().strip()) != b"":
                name, _, value = line.decode().partition(":")
                head[name.strip().lower()] = value.strip()
            body = response.fp.read(int(head["content-length"]))
            picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            parts[int(head["x-veil-frame"])] = picture
    finally:
        conn.close()
    return sorted(parts.items())


def assert_protected(
    index: int, picture: np.ndarray, sources: list[np.ndarray], clip: Clip
) -> None:
    """Every true face of the source frame `index` is protected in `picture` (any size)."""
    k = index % len(sources)
    source = sources[k]
    scale = picture.shape[1] / source.shape[1]
    shown = cv2.resize(source, (picture.shape[1], picture.shape[0]), interpolation=cv2.INTER_AREA)
    for x, y, w, h in clip.truth[k]:
        box = (x * scale, y * scale, w * scale, h * scale)
        assert is_protected(shown, picture, box), (index, box)
    # The measure can fail: the source itself, re-encoded as the stream encodes, is not protected.
    ok, jpeg = cv2.imencode(".jpg", shown, [cv2.IMWRITE_JPEG_QUALITY, 70])
    clear = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    x, y, w, h = clip.truth[k][0]
    assert not is_protected(shown, clear, (x * scale, y * scale, w * scale, h * scale))
