"""Metadata privacy: what a camera writes beside the pixels (GPS, serial numbers, titles, sound)
never reaches an output. Real files in, the real `veil` command, the outputs read back."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from conftest import ASTRONAUT_FACE, Clip, veil
from edge.evaluate.protection import is_protected

SERIAL = "AXN-77Q2391"
MAKE, MODEL = "Example Camera Co", "BodyCam X1"
GPS = {1: "N", 2: (48.0, 51.0, 30.24), 3: "E", 4: (2.0, 17.0, 40.2), 6: 35.0}
EXIF_IFD, GPS_IFD, BODY_SERIAL = 0x8769, 0x8825, 0xA431


def _tagged_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = MAKE
    exif[0x0110] = MODEL
    exif.get_ifd(EXIF_IFD)[BODY_SERIAL] = SERIAL
    exif.get_ifd(GPS_IFD).update(GPS)
    return exif


def _write_tagged_image(path: Path, bgr: np.ndarray) -> None:
    image = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    if path.suffix == ".jpg":
        image.save(
            path,
            exif=_tagged_exif(),
            comment=f"serial {SERIAL}".encode(),
            xmp=f"<x:xmpmeta><tiff:BodySerialNumber>{SERIAL}</tiff:BodySerialNumber></x:xmpmeta>".encode(),
            quality=95,
        )
    else:
        text = PngInfo()
        text.add_text("Comment", f"serial {SERIAL}")
        text.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta>{SERIAL}</x:xmpmeta>")
        image.save(path, exif=_tagged_exif(), pnginfo=text)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_image_output_has_no_exif_or_text(
    suffix: str, astronaut: np.ndarray, tmp_path: Path
) -> None:
    src = tmp_path / f"tagged{suffix}"
    _write_tagged_image(src, astronaut)
    # The input really carries what the output must not.
    with Image.open(src) as tagged:
        exif = tagged.getexif()
        assert exif.get_ifd(GPS_IFD)[1] == "N"
        assert exif.get_ifd(EXIF_IFD)[BODY_SERIAL] == SERIAL
    raw_in = src.read_bytes()
    exif_marker = b"Exif" if suffix == ".jpg" else b"eXIf"  # APP1 header, PNG chunk type
    assert SERIAL.encode() in raw_in and exif_marker in raw_in

    out = tmp_path / f"out{suffix}"
    result = veil("redact", src, "-o", out)

    assert result.returncode == 0, result.stderr
    with Image.open(out) as clean:
        assert clean.size == (astronaut.shape[1], astronaut.shape[0])
        assert len(clean.getexif()) == 0
        assert not {"exif", "xmp", "comment", "Comment", "XML:com.adobe.xmp"} & set(clean.info)
    raw_out = out.read_bytes()
    for needle in (SERIAL.encode(), b"Exif", b"eXIf", MAKE.encode(), MODEL.encode(), b"xmpmeta"):
        assert needle not in raw_out, needle


TITLE = "Patrol 7 - Rue Cler stop"
LOCATION = "+48.8584+002.2945/"
COMMENT = f"camera serial {SERIAL}"


def _write_video_with_audio(path: Path, clip: Path, fmt: str) -> int:
    """Re-encode the sample clip's pictures with a 440 Hz tone and identifying container tags."""
    frames = 0
    with av.open(str(clip)) as src, av.open(str(path), "w", format=fmt) as dst:
        dst.metadata["title"] = TITLE
        dst.metadata["location"] = LOCATION
        dst.metadata["comment"] = COMMENT
        video: Any = dst.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio: Any = dst.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for frame in src.decode(video=0):
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            picture.pts, picture.time_base = frames, Fraction(1, 30)
            dst.mux(video.encode(picture))
            frames += 1
        dst.mux(video.encode(None))
        rate, chunk = 48000, 1024
        for start in range(0, 2 * rate, chunk):
            t = np.arange(start, start + chunk) / rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            sound = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            sound.sample_rate, sound.pts = rate, start
            dst.mux(audio.encode(sound))
        dst.mux(audio.encode(None))
    return frames


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _all_metadata(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        values = list(container.metadata.values())
        for stream in container.streams:
            values += list(stream.metadata.values())
    return values


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["mp4", "mov"])
def test_video_output_has_no_audio_and_no_container_tags(
    fmt: str, sample_clip: Clip, tmp_path: Path
) -> None:
    src = tmp_path / f"tagged.{fmt}"
    written = _write_video_with_audio(src, sample_clip.path, fmt)
    with av.open(str(src)) as tagged:
        assert sorted(s.type for s in tagged.streams) == ["audio", "video"]
        assert tagged.metadata["title"] == TITLE
        assert tagged.metadata["comment"] == COMMENT
        assert tagged.metadata["location"] == LOCATION
    frames_in = _decoded_frames(src)
    assert frames_in == written == 60
    raw_in = src.read_bytes()
    assert SERIAL.encode() in raw_in and TITLE.encode() in raw_in
    if fmt == "mov":  # QuickTime keeps the location as text (©xyz); MP4 packs it in binary (loci)
        assert LOCATION.encode() in raw_in

    out = tmp_path / "out.mp4"
    result = veil("redact", src, "-o", out)

    assert result.returncode == 0, result.stderr
    assert "audio" in result.stderr and "dropped" in result.stderr
    with av.open(str(out)) as clean:
        assert clean.format.name.split(",")[0] in {"mov", "mp4"}
        assert [(s.type, s.codec_context.name) for s in clean.streams] == [("video", "h264")]
        assert (clean.streams.video[0].width, clean.streams.video[0].height) == (1280, 720)
        assert not {"title", "comment", "location", "location-eng"} & set(clean.metadata)
    for value in _all_metadata(out):
        for secret in (TITLE, LOCATION, COMMENT, SERIAL, "48.8584"):
            assert secret not in value, (secret, value)
    raw_out = out.read_bytes()
    for secret in (TITLE, LOCATION, SERIAL, "48.8584", "Rue Cler"):
        assert secret.encode() not in raw_out, secret
    assert b"\xa9xyz" not in raw_out and b"loci" not in raw_out
    assert _decoded_frames(out) == frames_in


def test_exif_orientation_is_applied_to_the_pixels_before_it_is_dropped(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    """A camera held sideways stores the picture on its side with orientation 6 ("turn 90 degrees
    clockwise to view"). The output has no EXIF left to say so, so its pixels must be upright."""
    stored = cv2.rotate(astronaut, cv2.ROTATE_90_COUNTERCLOCKWISE)
    stored[:20, :20] = (255, 255, 255)  # a marker in the stored picture's top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / "sideways.jpg"
    Image.fromarray(np.ascontiguousarray(stored[:, :, ::-1])).save(src, exif=exif, quality=95)
    out = tmp_path / "out.jpg"
    result = veil("redact", src, "-o", out)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert len(img.getexif()) == 0
    after = cv2.imread(str(out), cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR)
    assert after.shape == astronaut.shape  # upright: 512 x 512 either way, so check the marker
    assert after[:20, -20:].mean() > 200 and after[:20, :20].mean() < 200
    # And the face, now upright where the photo has it, is redacted.
    assert is_protected(astronaut, after, ASTRONAUT_FACE)
