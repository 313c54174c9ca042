"""Re-rendering a labelled face at a chosen size inside a scene-sized picture, for the size sweep.

The whole photo is shrunk with `INTER_AREA` until the face box's shorter side is the wanted size,
so the face keeps its own hair, neck and background, and is pasted onto a 640x480 canvas: the
detector then sees a small face in a frame of camera size, as it would in footage, not a tiny
image that it would upscale. Only shrinking is done; a face already at or below the size is left
out, because upscaling invents no realistic small face.

Choices that keep runs comparable and groups unconfounded:
- The canvas background is one fixed, mildly textured grey, the same for every face. A flat grey
  would make the pasted photo's rectangle the only structure in the frame; a photo or a mirrored
  border could hold face-like patterns whose masks might cover the labelled face by chance and
  inflate recall. Smooth random colour blotches plus fine grain give scene-like statistics and no
  faces (CenterFace finds none in it even at the lowest threshold Veil allows).
- Faces end up at the asked size or just above it (under 1 px more), never below: the protection
  measure judges faces under 24 px on the whole ellipse and larger ones per quadrant.
- The position comes from a SHA-256 of the image's file name: stable across runs and machines,
  varied across images (including the face's phase against the detector's 4 px stride), and the
  same relative position at every size.
- Conditions are applied to the whole canvas after pasting (the scene is dim or soft, not just the
  face), with noise seeded from the file name and size.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edge.frames import Pixels

Box = tuple[float, float, float, float]  # x, y, w, h

CANVAS = (640, 480)  # width, height: a VGA frame, what the detector gets from a small camera
_BACKGROUND_SEED = 20240611
_BACKGROUND_GREY = (116.0, 118.0, 121.0)  # BGR, a neutral mid-grey a touch warm

# Low light: 3 stops under (x1/8 in linear light, which is x0.39 on gamma-encoded values), then
# sensor-like noise whose variance grows with the signal (shot noise) over a floor (read noise).
_LOW_LIGHT_GAIN = 0.125 ** (1 / 2.2)
_READ_NOISE_VAR = 4.0
_SHOT_NOISE_PER_LEVEL = 0.25
_BLUR_SIGMA = 1.0
# Dusk, dim and soft at once (a doorway camera after sunset): a gain and a gamma on the
# gamma-encoded values, the lens's softness, then sensor noise of one fixed sigma.
_DUSK_GAIN, _DUSK_GAMMA, _DUSK_NOISE = 0.4, 1.3, 4.0
# A shadow: the dusk render in a square about the face, inside an otherwise clear canvas.
_SHADOW_SIDE, _SHADOW_MIN, _SHADOW_FEATHER = 8.0, 128.0, 8.0

CONDITIONS: dict[str, str] = {
    "clear": "as stored, only shrunk",
    "low_light": "3 stops darker, then shot + read noise (sigma about 4 levels), seeded",
    "blur": f"Gaussian blur, sigma {_BLUR_SIGMA:g} px, at the small size",
    "low_light+blur": (
        f"dim and soft: v' = 255 x {_DUSK_GAIN:g} x (v/255)^{_DUSK_GAMMA:g} on each channel, "
        f"then Gaussian blur sigma {_BLUR_SIGMA:g} px, then Gaussian noise sigma "
        f"{_DUSK_NOISE:g} levels (seeded), rounded and clipped to 0-255"
    ),
    "shadow": (
        "a face in a shadowed doorway of a bright scene: low_light+blur inside a square "
        f"{_SHADOW_SIDE:g} times the face's size (at least {_SHADOW_MIN:g} px) around it, "
        f"feathered over {_SHADOW_FEATHER:g} px; the rest of the canvas as stored"
    ),
}

BACKGROUND = "one fixed mid-grey, smooth colour blotches (sd 10 levels, ~40 px) and grain (sd 2)"
PLACEMENT = "SHA-256 of the file name picks the paste position; whole photo on the canvas"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A canvas with one face on it and that face's box in canvas pixels."""

    pixels: Pixels
    box: Box


def placement(key: str) -> tuple[float, float]:
    """Two fractions in [0, 1) fixed by `key`: where, across the free room, the photo goes."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return (
        int.from_bytes(digest[0:4], "big") / 2**32,
        int.from_bytes(digest[4:8], "big") / 2**32,
    )


@lru_cache(maxsize=4)
def background(width: int, height: int) -> Pixels:
    """The shared canvas background (read-only: copy it before drawing)."""
    rng = np.random.default_rng(_BACKGROUND_SEED)
    coarse = rng.normal(0.0, 1.0, (height // 40 + 2, width // 40 + 2, 3)).astype(np.float32)
    blotches = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) * 10.0
    grain = rng.normal(0.0, 2.0, (height, width, 1)).astype(np.float32)
    canvas = blotches + grain + np.asarray(_BACKGROUND_GREY, dtype=np.float32)
    out: Pixels = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out


def _offset(share: float, image_len: int, canvas_len: int, face0: float, face1: float) -> int:
    """Where the photo's edge goes on one axis: the whole photo on the canvas when it fits,
    otherwise the canvas inside the photo with the whole face box on it."""
    lo, hi = min(0, canvas_len - image_len), max(0, canvas_len - image_len)
    lo, hi = max(lo, math.ceil(-face0)), min(hi, math.floor(canvas_len - face1))
    if hi < lo:  # the face itself is larger than the canvas: centre it
        return round((canvas_len - face0 - face1) / 2)
    return lo + min(hi - lo, int(share * (hi - lo + 1)))


def render_face(
    image: Pixels, box: Box, size: int, *, key: str, canvas: tuple[int, int] = CANVAS
) -> Rendered | None:
    """`image` shrunk so that `box`'s shorter side is `size` px (up to 1 px more), pasted at the
    place `key` picks; None when the face is not larger than `size` already."""
    x, y, w, h = box
    if min(w, h) <= size:
        return None
    scale = size / min(w, h)
    height, width = image.shape[:2]
    # Rounded up (see above: never below `size`); the 1e-9 keeps float error from rounding down.
    sw, sh = (math.ceil(side * scale * (1 + 1e-9)) for side in (width, height))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = sw / width, sh / height
    fx0, fy0, fw, fh = x * fx, y * fy, w * fx, h * fy

    cw, ch = canvas
    share_x, share_y = placement(key)
    ox = _offset(share_x, sw, cw, fx0, fx0 + fw)
    oy = _offset(share_y, sh, ch, fy0, fy0 + fh)
    out = background(cw, ch).copy()
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(cw, ox + sw), min(ch, oy + sh)
    out[y0:y1, x0:x1] = small[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return Rendered(out, (fx0 + ox, fy0 + oy, fw, fh))


def apply_condition(rendered: Rendered, condition: str, *, key: str) -> Rendered:
    """The canvas as seen under `condition` (one of CONDITIONS); noise is seeded from `key`."""
    if condition == "clear":
        return rendered
    if condition == "blur":
        soft = cv2.GaussianBlur(rendered.pixels, (0, 0), sigmaX=_BLUR_SIGMA)
        return Rendered(np.asarray(soft, dtype=np.uint8), rendered.box)
    if condition == "low_light":
        dim = rendered.pixels.astype(np.float32) * _LOW_LIGHT_GAIN
        sigma = np.sqrt(_READ_NOISE_VAR + _SHOT_NOISE_PER_LEVEL * dim)
        return Rendered(_noisy(dim, sigma, key), rendered.box)
    if condition == "low_light+blur":
        dim = _DUSK_GAIN * 255.0 * (rendered.pixels.astype(np.float32) / 255.0) ** _DUSK_GAMMA
        soft = cv2.GaussianBlur(dim, (0, 0), sigmaX=_BLUR_SIGMA)
        return Rendered(_noisy(soft, _DUSK_NOISE, key), rendered.box)
    if condition == "shadow":
        dusk = apply_condition(rendered, "low_light+blur", key=key).pixels
        x, y, w, h = rendered.box
        half = max(_SHADOW_SIDE * max(w, h), _SHADOW_MIN) / 2
        cx, cy = x + w / 2, y + h / 2
        height, width = rendered.pixels.shape[:2]
        inside = np.zeros((height, width), np.float32)
        x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
        inside[y0 : round(cy + half), x0 : round(cx + half)] = 1.0
        weight = np.asarray(cv2.GaussianBlur(inside, (0, 0), sigmaX=_SHADOW_FEATHER / 2))[..., None]
        mixed = dusk * weight + rendered.pixels.astype(np.float32) * (1.0 - weight)
        return Rendered(np.clip(np.rint(mixed), 0, 255).astype(np.uint8), rendered.box)
    raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")


def _noisy(signal: np.ndarray, sigma: float | np.ndarray, key: str) -> Pixels:
    """`signal` plus Gaussian noise of `sigma` seeded from `key`, rounded to 8 bits."""
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    noise = np.random.default_rng(seed).standard_normal(signal.shape).astype(np.float32)
    out: Pixels = np.clip(np.rint(signal + noise * sigma), 0, 255).astype(np.uint8)
    return out
