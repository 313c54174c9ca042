"""Video details a camera user meets: phone videos stored sideways with a display rotation, and
variable frame rates. Real encode and decode through PyAV in both directions."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import veil
from edge.evaluate.protection import kept_detail
from edge.sample import sample_frames

# Display rotation (counter-clockwise, as FFmpeg reports it) → how to store an upright picture so
# that a player applying that rotation shows it upright.
STORE = {90: cv2.ROTATE_90_CLOCKWISE, -90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180}


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    pts: list[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    rotation: int = 0,
) -> None:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(30))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = time_base
        s.codec_context.time_base = time_base
        if rotation:
            s.set_display_rotation(rotation)
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = pts[k] if pts else round(k / 30 / time_base)
            frame.time_base = time_base
            c.mux(s.encode(frame))
        c.mux(s.encode(None))


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return [f.to_ndarray(format="bgr24") for f in frames], [float(f.time) for f in frames]


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_phone_video_comes_out_upright_and_redacted(tmp_path: Path, rotation: int) -> None:
    upright, truth = zip(*sample_frames(640, 360, 12), strict=True)
    stored = [cv2.rotate(f, STORE[rotation]) for f in upright]
    clip = tmp_path / "phone.mp4"
    write_clip(clip, stored, rotation=rotation)
    with av.open(str(clip)) as c:
        assert next(c.decode(video=0)).rotation % 360 == rotation % 360  # the file is tagged

    out = tmp_path / "out.mp4"
    result = veil("redact", clip, "-o", out)
    assert result.returncode == 0, result.stderr
    frames, _ = decode(out)
    assert len(frames) == 12
    assert frames[0].shape == (360, 640, 3)  # upright: as a player would show the input
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).rotation == 0  # and no rotation tag is left to apply
    for k, after in enumerate(frames):
        for face in truth[k]:
            assert kept_detail(upright[k], after, face) < 0.4, (k, face)
        # The upright background lines up with the output's: same orientation, detail kept.
        assert kept_detail(upright[k], after, (600.0, 10.0, 30.0, 100.0)) > 0.6, k


def test_variable_frame_rate_keeps_its_timing(tmp_path: Path) -> None:
    images = [f for f, _ in sample_frames(320, 180, 10)]
    pts = [0, 33, 67, 100, 250, 283, 317, 700, 733, 767]  # ms: two pauses, as a camera under load
    clip = tmp_path / "vfr.mp4"
    write_clip(clip, images, pts=pts)
    out = tmp_path / "out.mp4"
    result = veil("redact", clip, "-o", out)
    assert result.returncode == 0, result.stderr
    _, times_in = decode(clip)
    frames, times_out = decode(out)
    assert len(frames) == len(pts)
    assert times_out == pytest.approx([t - times_in[0] for t in times_in], abs=0.002)
