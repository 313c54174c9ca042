"""The preview page in a real browser: headless Chromium (Debian's, never a downloaded one)
driven by Playwright, against a real server fed the sample clip's redacted frames and a real
StatusBoard's snapshots. It must follow the token link to a cookie, play the picture, refresh
the status every second under its own strict CSP, warn when the run is degraded or the status
is gone, fit a phone, and show nothing at all without the token."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from edge.run import RunReport, StatusBoard
from helpers.browser import artifacts
from helpers.preview import (
    TOKEN,
    running,
    token_never_printed,  # noqa: F401 (an autouse fixture)
)

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}

# Draws the <img> (same origin, so the canvas is not tainted) and keeps a hash of each picture
# seen; true once two different pictures have been shown.
TWO_PICTURES = """() => {
  const img = document.getElementById("stream");
  if (!img.naturalWidth) return false;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 0;
  for (let i = 0; i < data.length; i += 4) h = (h * 31 + data[i] + 7 * data[i + 1]) >>> 0;
  window.seenPictures = window.seenPictures || new Set();
  window.seenPictures.add(h);
  return window.seenPictures.size >= 2;
}"""
FRAMES_IN = "Number(document.getElementById('frames_in').textContent)"


class _Recording:
    """The segment sink as the status board sees it: a segment is being written."""

    segment_open = True


class LiveStatus:
    """A real StatusBoard's snapshot, as the preview serves it; every call is a second of a
    run that takes in more frames."""

    def __init__(self, folder: Path) -> None:
        self.report = RunReport()
        self.board = StatusBoard(
            path=folder / "status.json", report=self.report, folder=folder, source="sample",
            run="0123456789abcdef",
        )  # fmt: skip
        self.board.sink_state = _Recording()
        self._lock = threading.Lock()

    def degrade(self) -> None:
        """The disk filled, and the detector is too slow for the latency limit."""
        with self._lock:
            self.board.storage_full = True
            self.board.max_latency_ms = 5.0

    def __call__(self) -> bytes:
        with self._lock:
            for _ in range(25):
                self.report.frames_in += 1
                self.report.frames_out += 1
                self.report.latency.add(42.0)
                self.report.detect.add(18.0)
            self.board.segments = self.report.frames_in // 250  # closed: none in the first 10 s
            return json.dumps(self.board.snapshot()).encode()


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_the_page_plays_the_picture_and_the_status(
    browser: Any, viewport: dict[str, int], tmp_path: Path
) -> None:
    status = LiveStatus(tmp_path)
    with running(status=status) as server:
        host, port = server.address
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        try:
            response = page.goto(f"http://{host}:{port}/?token={TOKEN}")
            assert response is not None and response.status == 200
            assert page.url == f"http://{host}:{port}/"  # the token left the address bar
            (cookie,) = [c for c in context.cookies() if c["name"] == "veil_preview"]
            assert cookie["value"] == TOKEN and cookie["httpOnly"]
            assert cookie["sameSite"] == "Lax"
            assert page.evaluate("document.cookie") == ""  # scripts cannot read it

            page.wait_for_function(TWO_PICTURES, polling=200, timeout=15_000)
            page.wait_for_function(f"() => {FRAMES_IN} > 0", timeout=10_000)
            first = int(page.text_content("#frames_in") or "0")
            page.wait_for_function(f"() => {FRAMES_IN} > {first}", timeout=10_000)
            assert page.text_content("#state") == "running"
            assert page.is_hidden("#banner")
            assert page.text_content("#latency_p50") == "42.0 ms"
            assert page.text_content("#latency_p99") == "42.0 ms"
            assert (page.text_content("#disk_free") or "").endswith(("GB", "MB"))
            temp = page.text_content("#cpu_temp") or ""
            assert temp == "n/a" or temp.endswith("\u00b0C")
            assert (page.text_content("#uptime") or "").endswith("s")
            # The segment being written shows beside the closed ones (issue 22: "Segments 0").
            assert (page.text_content("#segments") or "").endswith(" closed, 1 recording")
            for field in ("frames_out", "dropped", "obscured", "segments", "camera_fps"):
                assert (page.text_content(f"#{field}") or "\u2026") != "\u2026", field

            box = page.locator("#stream").bounding_box()
            assert box is not None and box["height"] > 0
            if viewport is PHONE:
                assert box["width"] >= 0.9 * viewport["width"]
            name = "preview.png" if viewport is PHONE else "preview-laptop.png"
            shot = artifacts() / name
            page.screenshot(path=str(shot))
            assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 1000

            status.degrade()
            page.wait_for_selector("#banner", state="visible", timeout=10_000)
            banner = page.text_content("#banner") or ""
            assert banner.startswith("Degraded") and "max_latency_ms" in banner
            assert "the disk is full: recording is paused" in banner  # why (issue 22)
            assert page.text_content("#state") == "degraded"

            server.close()  # the server goes away: the page says so rather than show old news
            page.wait_for_function(
                "() => document.getElementById('banner').className === 'error'", timeout=10_000
            )
            assert "cannot be fetched" in (page.text_content("#banner") or "")
            # The page's own style and script ran under its CSP, and nothing was refused.
            assert not [line for line in console if "Content Security Policy" in line]
        finally:
            context.close()


def test_without_the_token_the_browser_gets_nothing(browser: Any) -> None:
    with running() as server:
        host, port = server.address
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        pictures: list[str] = []
        page.on("response", lambda r: pictures.append(r.url) if r.status == 200 else None)
        try:
            for path in ("/", "/stream.mjpg", "/status.json", "/?token=wrong"):
                response = page.goto(f"http://{host}:{port}{path}")
                assert response is not None and response.status == 401, path
                assert page.evaluate("document.images.length") == 0
                assert TOKEN not in page.content()
            assert pictures == [] and context.cookies() == []
            assert server.stats()["served"] == 0
        finally:
            context.close()
