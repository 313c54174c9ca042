"""GStreamer's RTSP server (tests/servers/rtsp_server.py) as a camera on loopback, run by the
system python3 that has PyGObject (`bash tests/system-packages.sh`): H.264 at W x H and FPS,
asking for USER and PASSWORD when started with auth."""

from __future__ import annotations

import selectors
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import SERVERS

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = SERVERS / "rtsp_server.py"
W, H, FPS = 384, 216, 15
USER, PASSWORD = "veil-cam-user", "Pw@3f9Kq"
CREDS = f"{USER}:{PASSWORD.replace('@', '%40')}@"  # '@' in a password travels as %40


class RtspServer:
    def __init__(self, clip: Path, port: int = 0, auth: bool = False) -> None:
        args = [SYSTEM_PYTHON, str(SERVER), "--frames", str(clip), "--port", str(port)]
        args += ["--width", str(W), "--height", str(H), "--fps", str(FPS)]
        args += ["--user", USER, "--password", PASSWORD] if auth else []
        err = tempfile.TemporaryFile()  # a pipe nobody reads could fill and block the server
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
        )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            line = self.proc.stdout.readline().decode() if sel.select(timeout=20) else ""
        if not line.startswith("READY "):
            self.kill()
            err.seek(0)
            pytest.fail(
                f"RTSP server did not start: {line!r} {err.read().decode(errors='replace')}"
            )
        self.port = int(line.split()[1])

    def url(self, creds: str = "", query: str = "") -> str:
        return f"rtsp://{creds}127.0.0.1:{self.port}/cam{query}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
