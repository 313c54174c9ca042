"""Pictures that declare more pixels than the limit are refused before they are decoded, and in a
folder run they are reported and skipped while the rest are written (issue 21: a 74-byte PNG
crashed the whole run). Single-file refusals are in test_cli_errors' table."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, veil
from edge.audit import DEFAULT_LOG_NAME, verify_log
from helpers.bombs import avi_declaring, jpeg_declaring, png_declaring


@pytest.mark.parametrize("ext", [".png", ".jpg"])
@pytest.mark.parametrize("size", [(512, 512), (640, 360), (1, 1)])
def test_the_declared_size_is_what_opencv_decodes(ext: str, size: tuple[int, int]) -> None:
    from edge.capture.image_file import declared_size

    width, height = size
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    data = encoded.tobytes()
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    assert declared_size(data) == (decoded.shape[1], decoded.shape[0]) == size


def test_the_jpeg_size_is_found_past_large_segments_and_stray_bytes() -> None:
    """libjpeg skips bytes between segments up to the next marker, and so must the reader,
    or a size hidden behind them would go unchecked (an APP1 full of SOF-looking bytes first)."""
    from edge.capture.image_file import declared_size

    ok, encoded = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    assert ok
    data = encoded.tobytes()
    app = b"\xff\xe1" + struct.pack(">H", 65535) + b"\xff\xc0\x00\x11\x08\x00\x01" * 9362 + b"x"
    crafted = data[:2] + app + b"junk" + app + data[2:]
    assert cv2.imdecode(np.frombuffer(crafted, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)
    assert declared_size(crafted) == (64, 48)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"BM" + bytes(60), b"GIF89a"],
    ids=["empty", "png-signature-only", "jpeg-cut-in-header", "bmp", "gif"],
)
def test_no_size_is_declared_by_anything_else(data: bytes) -> None:
    from edge.capture.image_file import declared_size

    assert declared_size(data) is None


def test_a_folder_run_skips_each_bomb_and_writes_the_rest(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    assert cv2.imwrite(str(src / "a.png"), astronaut)
    (src / "b_bomb.png").write_bytes(png_declaring(100_000, 100_000))
    (src / "c_bomb.jpg").write_bytes(jpeg_declaring(astronaut, 20_000, 20_000))
    (src / "d_huge.avi").write_bytes(avi_declaring(15_000, 15_000))
    assert cv2.imwrite(str(src / "e.jpg"), astronaut)

    result = veil("redact", src, "-o", out)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("veil: error:")]
    assert [line.split(": ")[2] for line in errors[:3]] == [
        f"{src / 'b_bomb.png'}",
        f"{src / 'c_bomb.jpg'}",
        f"{src / 'd_huge.avi'}",
    ]
    assert all("over the limit of 100,000,000" in line for line in errors[:3])
    assert errors[3] == "veil: error: 3 of 5 input(s) failed; the others were written"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "e.jpg", DEFAULT_LOG_NAME]
    verdict = verify_log(out / DEFAULT_LOG_NAME, media=out)
    assert verdict.ok, verdict.problems
    fx, fy, fw, fh = (int(v) for v in ASTRONAUT_FACE)
    for name in ("a.png", "e.jpg"):
        face = cv2.imread(str(out / name))[fy : fy + fh, fx : fx + fw].astype(int)
        assert np.abs(face - astronaut[fy : fy + fh, fx : fx + fw]).mean() > 20, name


def test_a_raised_limit_lets_a_larger_picture_in(astronaut: np.ndarray, tmp_path: Path) -> None:
    """The control for the refusals: the setting is what decides."""
    big = cv2.resize(astronaut, (2000, 1000))
    assert cv2.imwrite(str(tmp_path / "big.png"), big)
    low = tmp_path / "low.toml"
    low.write_text("[input]\nmax_image_area = 1_000_000\n", encoding="utf-8")
    refused = veil("redact", tmp_path / "big.png", "-o", tmp_path / "a", "--config", low)
    assert refused.returncode == 1 and "declares 2000x1000 pixels" in refused.stderr
    high = tmp_path / "high.toml"
    high.write_text("[input]\nmax_image_area = 2_000_000\n", encoding="utf-8")
    passed = veil("redact", tmp_path / "big.png", "-o", tmp_path / "b", "--config", high)
    assert passed.returncode == 0, passed.stderr


def test_opencv_own_limit_is_lowered_before_it_loads() -> None:
    """The second line of defence: a picture over the ceiling is refused by OpenCV itself, in a
    process that imports Veil first (as `veil` does), before OpenCV allocates its pixels."""
    width, height = 25_000, 20_000  # 500 MP: over the ceiling, under OpenCV's default limit
    from edge.config import MAX_PIXELS_CEILING

    code = (
        "import edge, cv2, numpy as np, os, sys\n"
        "print(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])\n"
        "data = np.frombuffer(sys.stdin.buffer.read(), np.uint8)\n"
        "try:\n"
        "    cv2.imdecode(data, cv2.IMREAD_COLOR)\n"
        "except cv2.error as exc:\n"
        "    print('refused' if 'CV_IO_MAX_IMAGE_PIXELS' in str(exc) else exc)\n"
        "else:\n"
        "    print('decoded')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=png_declaring(width, height),
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert result.stdout.decode().split() == [str(MAX_PIXELS_CEILING), "refused"], result.stderr
    assert width * height > MAX_PIXELS_CEILING


def test_a_fault_no_check_foresaw_costs_only_its_input(
    astronaut: np.ndarray,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A decoder raising something Veil has no name for (here a double of the real source that
    raises for one file) is one line, and the folder run goes on; alone, it is one line too."""
    import edge.cli.redact_cmd as redact_cmd
    from edge.cli.main import main

    real = redact_cmd.ImageFileSource

    def flaky(path: Path, **kwargs: int) -> object:
        if path.name == "b.png":
            raise ZeroDivisionError("a decoder bug\nsecond line")
        return real(path, **kwargs)

    monkeypatch.setattr(redact_cmd, "ImageFileSource", flaky)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        assert cv2.imwrite(str(src / name), astronaut)

    assert main(["redact", str(src), "-o", str(out)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors[0] == (
        f"veil: error: {src / 'b.png'}: failed unexpectedly (ZeroDivisionError: a decoder bug)"
    )
    verdict = verify_log(out / DEFAULT_LOG_NAME, media=out)
    assert verdict.ok and sorted(verdict.files) == ["a.png", "c.png"], verdict.problems

    assert main(["redact", str(src / "b.png"), "-o", str(tmp_path / "alone")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == errors[0]
