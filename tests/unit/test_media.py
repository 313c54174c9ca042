"""Planning what to redact and where: the rules that keep originals safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import UsageError
from edge.media import plan


def test_a_folder_is_mirrored_and_leftovers_of_killed_runs_are_not_inputs(tmp_path: Path) -> None:
    src = tmp_path / "card"
    (src / "day1").mkdir(parents=True)
    for name in ("a.mp4", "day1/b.JPG", "day1/c.png", "notes.txt", ".a.veil-1f2e3d4c.partial.mp4"):
        (src / name).write_bytes(b"x")
    jobs = plan(src, None)
    out = tmp_path / "card.redacted"
    assert [(j.src.relative_to(src).as_posix(), j.dst, j.kind) for j in jobs] == [
        ("a.mp4", out / "a.mp4", "video"),
        ("day1/b.JPG", out / "day1" / "b.JPG", "image"),
        ("day1/c.png", out / "day1" / "c.png", "image"),
    ]


def test_an_output_folder_inside_the_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    with pytest.raises(UsageError, match="inside the input folder"):
        plan(tmp_path, tmp_path / "out")


def test_single_file_default_names(tmp_path: Path) -> None:
    (tmp_path / "clip.MOV").write_bytes(b"x")
    (tmp_path / "photo.jpeg").write_bytes(b"x")
    assert plan(tmp_path / "clip.MOV", None)[0].dst == tmp_path / "clip.redacted.mp4"
    assert plan(tmp_path / "photo.jpeg", None)[0].dst == tmp_path / "photo.redacted.jpeg"
    assert plan(tmp_path / "photo.jpeg", tmp_path / "x.jpg")[0].dst == tmp_path / "x.jpg"
    with pytest.raises(UsageError, match="keeps its format"):
        plan(tmp_path / "photo.jpeg", tmp_path / "x.png")


def test_an_output_folder_is_the_same_whether_it_exists_or_not(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "there").mkdir()
    clip = tmp_path / "clip.mp4"
    assert plan(clip, tmp_path / "there")[0].dst == tmp_path / "there" / "clip.redacted.mp4"
    # A name without an extension is a folder too, made when the output is written...
    assert plan(clip, tmp_path / "new")[0].dst == tmp_path / "new" / "clip.redacted.mp4"
    # ...and a name with one is the file, its folders made as needed.
    assert plan(clip, tmp_path / "a" / "b.mp4")[0].dst == tmp_path / "a" / "b.mp4"
    with pytest.raises(UsageError, match="name it .mp4"):
        plan(clip, tmp_path / "out.txt")
