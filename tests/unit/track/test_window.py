"""The held window: frames leave in order and only when ready, never more are held than it
allows, and a face found late is followed back onto the frames held before it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.track import Held, Window

H, W = 360, 640
STEP = (6, -3)  # px per frame (x, y) the texture moves


def texture() -> np.ndarray:
    noise = np.random.default_rng(11).integers(0, 256, (H, W), dtype=np.uint8)
    return np.asarray(cv2.GaussianBlur(noise, (5, 5), 1.2), dtype=np.uint8)


def moving(count: int) -> list[Held[str]]:
    """`count` held frames of one texture moving by STEP each frame."""
    base = texture()
    dx, dy = STEP
    return [Held(f"f{k}", np.roll(base, (k * dy, k * dx), axis=(0, 1)), k) for k in range(count)]


def test_frames_leave_oldest_first_and_only_while_ready() -> None:
    window: Window[str] = Window(4)
    for held in moving(4):
        assert list(window.push(held)) == []
    ready = {"f0", "f1", "f3"}
    out = [h.item for h in window.release(lambda h: h.item in ready)]
    # f2 is not ready: it and every frame after it stay, whatever their own state.
    assert out == ["f0", "f1"]
    assert [h.item for h in window.pending()] == ["f2", "f3"]
    ready.add("f2")
    assert [h.item for h in window.release(lambda h: h.item in ready)] == ["f2", "f3"]
    assert len(window) == 0


def test_a_full_window_pushes_out_its_oldest_frame() -> None:
    window: Window[str] = Window(3)
    frames = moving(6)
    pushed_out = [[h.item for h in window.push(held)] for held in frames]
    assert pushed_out == [[], [], [], ["f0"], ["f1"], ["f2"]]
    assert len(window) == 3
    # A frame that left holds no picture any more: nothing is followed onto it.
    assert frames[0].grey is None and frames[5].grey is not None
    assert [h.item for h in window.flush()] == ["f3", "f4", "f5"]


def test_a_window_holds_at_least_one_frame() -> None:
    with pytest.raises(ValueError):
        Window(0)


def test_a_face_found_late_is_followed_back_along_its_path_only_as_deep_as_asked() -> None:
    frames = moving(7)
    window: Window[str] = Window(10)
    for held in frames:
        assert list(window.push(held)) == []
    box = np.array([300.0, 150.0, 360.0, 220.0])  # found on the newest frame, f6
    given = window.backfill(box, depth=4)
    assert given == 4
    dx, dy = STEP
    for k in range(6):
        faces = frames[k].faces()
        if k < 2:  # deeper than asked: untouched
            assert len(faces) == 0, k
            continue
        back = 6 - k
        expected = box - np.array([back * dx, back * dy, back * dx, back * dy])
        assert len(faces) == 1, k
        assert np.abs(faces.xyxy[0] - expected).max() <= 1.5, (k, faces.xyxy[0], expected)
    assert len(frames[6].faces()) == 0  # the frame it was found on has its own detection


def test_following_back_from_a_frame_in_the_middle() -> None:
    frames = moving(6)
    window: Window[str] = Window(10)
    for held in frames:
        list(window.push(held))
    box = np.array([200.0, 100.0, 260.0, 170.0])  # found on f3
    assert window.backfill(box, depth=10, at=3) == 3
    dx, dy = STEP
    for k in range(3):
        back = 3 - k
        (got,) = frames[k].faces().xyxy
        assert np.abs(got - (box - [back * dx, back * dy, back * dx, back * dy])).max() <= 1.5
    assert all(len(frames[k].faces()) == 0 for k in (3, 4, 5))


def test_following_back_stops_where_the_flow_loses_the_face() -> None:
    # A cut: the frame before shows something else. The box is drawn once more, larger, there,
    # and nothing is followed further back.
    other = np.random.default_rng(99).integers(0, 256, (H, W), dtype=np.uint8)
    cut = [Held("a", other, 0), Held("b", other.copy(), 1), Held("c", texture(), 2)]
    window: Window[str] = Window(5)
    for held in cut:
        list(window.push(held))
    box = np.array([300.0, 150.0, 360.0, 220.0])
    assert window.backfill(box, depth=5) == 1
    (grown,) = cut[1].faces().xyxy
    assert grown[2] - grown[0] > box[2] - box[0]
    assert len(cut[0].faces()) == 0


def test_a_failed_frame_does_not_stop_a_face_being_followed_back_past_it() -> None:
    # A frame whose search failed is obscured whole and needs no box; the frames before it were
    # vouched for by the same later searches that found the face, so they do need theirs.
    frames = moving(6)
    frames[2].failed = "detector: RuntimeError"
    window: Window[str] = Window(10)
    for held in frames:
        list(window.push(held))
    box = np.array([300.0, 150.0, 360.0, 220.0])
    window.backfill(box, depth=5)
    given = [len(h.faces()) > 0 for h in frames]
    assert given[:2] == [True, True] and given[3:] == [True, True, False], given
