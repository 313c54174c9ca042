"""Optical flow follows a box onto the next frame by what its pixels did, and says so when it
cannot (a patch with nothing to follow)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from edge.evaluate.size_sweep import background
from edge.track.flow import follow, follow_all, reach, shift

H, W = 360, 640


def textured(seed: int = 3) -> np.ndarray:
    """A grey picture of random texture, smoothed a little so that it has gradients at every
    scale the pyramid looks at."""
    noise = np.random.default_rng(seed).integers(0, 256, (H, W), dtype=np.uint8)
    return np.asarray(cv2.GaussianBlur(noise, (5, 5), 1.2), dtype=np.uint8)


@pytest.mark.parametrize("dx, dy", [(7, -4), (-12, 9), (0, 0), (20, 15)])
def test_a_box_on_texture_moves_with_it(dx: int, dy: int) -> None:
    before = textured()
    after = np.roll(before, (dy, dx), axis=(0, 1))
    box = np.array([250.0, 120.0, 330.0, 220.0])
    moved = follow(before, after, box, reach(box))
    assert moved is not None
    expected = box + np.array([dx, dy, dx, dy], dtype=np.float64)
    assert np.abs(moved - expected).max() <= 1.0, (moved, expected)


def test_a_box_moved_beyond_what_it_may_reach_is_not_followed_there() -> None:
    # Only the box grown by `reach` (and by the picture's own motion, none here: only the patch
    # moves) is looked at: a move past it is not found.
    before = textured()
    after = before.copy()
    after[120:160, 310:350] = before[120:160, 250:290]
    box = np.array([250.0, 120.0, 290.0, 160.0])
    moved = follow(before, after, box, 24.0)
    assert moved is None or np.abs(moved - (box + [60, 0, 60, 0])).max() > 1.0


def test_a_small_dim_face_is_followed_through_a_camera_pan_larger_than_itself() -> None:
    """A worn camera pans and bobs further between two frames taken (a run taking every other
    frame) than a 16 px face in dusk noise can be followed by its own flow: the points start
    where the picture as a whole moved."""
    rng = np.random.default_rng(5)
    face = cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (256, 256)), cv2.COLOR_RGB2GRAY)
    # A 720p scene with structure at every scale: blotches of colour, grain (the size sweep's).
    scene = cv2.cvtColor(background(1280, 720), cv2.COLOR_BGR2GRAY).astype(np.float32)
    x, y = 300, 150
    scene[y : y + 40, x : x + 40] = cv2.resize(face[40:200, 90:250], (40, 40))
    dx, dy = 31, -11

    def dusk(picture: np.ndarray) -> np.ndarray:
        dim = 0.35 * picture + rng.normal(0, 4, picture.shape)
        return np.clip(np.rint(dim), 0, 255).astype(np.uint8)

    before = dusk(scene)
    after = dusk(np.roll(scene, (dy, dx), axis=(0, 1)))
    assert np.abs(shift(before, after) - [dx, dy]).max() <= 3.0  # where the points start
    box = np.array([x + 12.0, y + 12.0, x + 28.0, y + 28.0])  # the face's middle, 16 px
    (moved,) = follow_all(before, after, [box], [reach(box)])
    assert moved is not None
    assert np.abs(moved - (box + [dx, dy, dx, dy])).max() <= 1.5


def test_a_featureless_patch_is_not_followed() -> None:
    flat = np.full((H, W), 128, dtype=np.uint8)
    box = np.array([250.0, 120.0, 330.0, 220.0])
    assert follow(flat, flat.copy(), box, reach(box)) is None
    # The same box on texture is followed: what fails above is the patch, not the box.
    picture = textured()
    assert follow(picture, picture.copy(), box, reach(box)) is not None


def test_a_patch_that_changed_entirely_is_not_followed() -> None:
    # A cut: the picture after has nothing to do with the one before.
    box = np.array([250.0, 120.0, 330.0, 220.0])
    assert follow(textured(3), textured(4), box, reach(box)) is None


def test_several_boxes_followed_together_each_move_their_own_way() -> None:
    # The left and right halves of the picture move apart; one box on each, followed in one call.
    before = textured()
    after = before.copy()
    half = W // 2
    after[:, :half] = np.roll(before[:, :half], (5, -8), axis=(0, 1))
    after[:, half:] = np.roll(before[:, half:], (-6, 9), axis=(0, 1))
    left = np.array([80.0, 120.0, 160.0, 220.0])
    right = np.array([460.0, 120.0, 540.0, 220.0])
    flat = np.array([0.0, 0.0, 3.0, 3.0])  # too small to follow: None, the others unaffected
    moved = follow_all(before, after, [left, flat, right], [reach(left), 24.0, reach(right)])
    assert moved[1] is None
    assert moved[0] is not None and moved[2] is not None
    assert np.abs(moved[0] - (left + [-8, 5, -8, 5])).max() <= 1.0, moved[0]
    assert np.abs(moved[2] - (right + [9, -6, 9, -6])).max() <= 1.0, moved[2]
