"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright, never a
downloaded browser. Under CI=true a missing package fails the test instead of skipping it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def chromium_path() -> str:
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    path = shutil.which("chromium")
    if path is None:
        missing.append("chromium (apt-get install chromium)")
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert path is not None
    return path


def artifacts() -> Path:
    folder = Path(os.environ.get("VEIL_TEST_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
