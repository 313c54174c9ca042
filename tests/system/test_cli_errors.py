"""Bad input through the real `veil` command: the right exit code, one error line, nothing left
behind, and no input ever modified."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, Clip, veil
from edge.audit import DEFAULT_LOG_NAME, verify_log
from helpers.bombs import avi_declaring, jpeg_declaring, mjpeg_avi, png_declaring

PARTIAL_GLOB = ".*.veil-*.partial*"


@dataclass(frozen=True)
class Media:
    clip: Path  # the sample clip, moov atom at the end (FFmpeg's default)
    faststart: Path  # the same clip remuxed with the moov atom in front
    face_png: Path


@pytest.fixture(scope="module")
def media(
    sample_clip: Clip, astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> Media:
    root = tmp_path_factory.mktemp("media")
    faststart = root / "faststart.mp4"
    with (
        av.open(str(sample_clip.path)) as src,
        av.open(str(faststart), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
    ):
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            packet.stream = out
            dst.mux(packet)
    data = faststart.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "remux did not move the index to the front"
    face_png = root / "face.png"
    assert cv2.imwrite(str(face_png), astronaut)
    return Media(sample_clip.path, faststart, face_png)


def _copy(src: Path, dst: Path, fraction: float = 1.0) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _config(tmp: Path, text: str) -> Path:
    path = tmp / "profile.toml"
    path.write_text(text, encoding="utf-8")
    return path


# Each builder lays out its inputs under `tmp` and returns the arguments and the output path that
# must not exist afterwards.
Args = list[str | Path]
Builder = Callable[[Path, Media], tuple[Args, Path]]


def missing_input(tmp: Path, m: Media) -> tuple[Args, Path]:
    return ["redact", tmp / "nothere.mp4", "-o", tmp / "out.mp4"], tmp / "out.mp4"


def text_as_mp4(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = tmp / "notes.mp4"
    src.write_text("this is a shopping list, not a video\n" * 50, encoding="utf-8")
    return ["redact", src, "-o", tmp / "out.mp4"], tmp / "out.mp4"


def truncated_mp4(tmp: Path, m: Media) -> tuple[Args, Path]:
    # The index (moov) sits at the end of FFmpeg's output; 40 % keeps only part of the data.
    src = _copy(m.clip, tmp / "cut.mp4", 0.4)
    return ["redact", src, "-o", tmp / "out.mp4"], tmp / "out.mp4"


def truncated_faststart_half(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.faststart, tmp / "cut.mp4", 0.5)
    return ["redact", src, "-o", tmp / "out.mp4"], tmp / "out.mp4"


def truncated_faststart_late(tmp: Path, m: Media) -> tuple[Args, Path]:
    # The index is intact and promises every frame, and a good part of them decodes: the cut must
    # still be an error, not a silently shorter output.
    src = _copy(m.faststart, tmp / "cut.mp4", 0.75)
    with av.open(str(src)) as probe:
        assert probe.streams.video[0].frames == 60
    return ["redact", src, "-o", tmp / "out.mp4"], tmp / "out.mp4"


def truncated_on_frame_boundary(tmp: Path, m: Media) -> tuple[Args, Path]:
    # Cut exactly where frame 30's data starts: every packet left is whole, nothing is flagged as
    # damaged, and only the index still promises 60 frames.
    with av.open(str(m.faststart)) as probe:
        starts = [p.pos for p in probe.demux(video=0) if p.size]
    data = m.faststart.read_bytes()
    src = tmp / "cut.mp4"
    src.write_bytes(data[: starts[30]])
    return ["redact", src, "-o", tmp / "out.mp4"], tmp / "out.mp4"


def zero_byte_jpg(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = tmp / "empty.jpg"
    src.touch()
    return ["redact", src, "-o", tmp / "out.jpg"], tmp / "out.jpg"


def header_only_jpg(tmp: Path, m: Media) -> tuple[Args, Path]:
    """A JPEG cut off inside its header: bytes, but no picture (not "empty")."""
    src = tmp / "cut.jpg"
    ok, jpeg = cv2.imencode(".jpg", cv2.imread(str(m.face_png)))
    assert ok
    src.write_bytes(jpeg.tobytes()[:100])
    return ["redact", src, "-o", tmp / "out.jpg"], tmp / "out.jpg"


def unwritable_folder(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.face_png, tmp / "face.png")
    if os.geteuid() != 0:
        locked = tmp / "unwritable"
        locked.mkdir()
        locked.chmod(0o500)
        return ["redact", src, "-o", locked / "out.png"], locked / "out.png"
    # The tests run as root here, and root ignores a 0o500 folder. A regular file used as a
    # folder cannot be written through by anyone, root included.
    blocker = tmp / "unwritable.txt"
    blocker.write_text("a file, not a folder\n", encoding="utf-8")
    return ["redact", src, "-o", blocker / "out.png"], blocker / "out.png"


def output_is_input(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.clip, tmp / "clip.mp4")
    return ["redact", src, "-o", src], tmp / "clip.redacted.mp4"


def output_is_input_spelled_differently(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.clip, tmp / "clip.mp4")
    (tmp / "sub").mkdir()
    return ["redact", src, "-o", tmp / "sub" / ".." / "clip.mp4"], tmp / "clip.redacted.mp4"


def output_is_input_image(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.face_png, tmp / "face.png")
    return ["redact", src, "-o", src], tmp / "face.redacted.png"


def unknown_option(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.face_png, tmp / "face.png")
    return ["redact", src, "-o", tmp / "out.png", "--bogus"], tmp / "out.png"


def unknown_subcommand(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.face_png, tmp / "face.png")
    return ["frobnicate", src, "-o", tmp / "out.png"], tmp / "out.png"


def _with_config(text: str) -> Builder:
    def build(tmp: Path, m: Media) -> tuple[Args, Path]:
        src = _copy(m.face_png, tmp / "face.png")
        return [
            "redact",
            src,
            "-o",
            tmp / "out.png",
            "--config",
            _config(tmp, text),
        ], tmp / "out.png"

    return build


def existing_output(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = _copy(m.face_png, tmp / "face.png")
    existing = tmp / "out.png"
    existing.write_bytes(b"someone's earlier result, to be kept")
    # The output "must not exist" check is on a name that a wrong fallback might pick instead.
    return ["redact", src, "-o", existing], tmp / "face.redacted.png"


def png_bomb(tmp: Path, m: Media) -> tuple[Args, Path]:
    """A few dozen bytes declaring 100000x100000 pixels (issue 21: a 26-line traceback)."""
    src = tmp / "bomb.png"
    src.write_bytes(png_declaring(100_000, 100_000))
    return ["redact", src, "-o", tmp / "out.png"], tmp / "out.png"


def jpeg_bomb(tmp: Path, m: Media) -> tuple[Args, Path]:
    """A real JPEG whose frame header says 20000x20000: under OpenCV's own limit."""
    src = tmp / "bomb.jpg"
    src.write_bytes(jpeg_declaring(cv2.imread(str(m.face_png)), 20_000, 20_000))
    return ["redact", src, "-o", tmp / "out.jpg"], tmp / "out.jpg"


def bmp_named_png(tmp: Path, m: Media) -> tuple[Args, Path]:
    """OpenCV would decode it (and a dozen other formats) whatever the name says."""
    ok, bmp = cv2.imencode(".bmp", cv2.imread(str(m.face_png)))
    assert ok
    src = tmp / "photo.png"
    src.write_bytes(bmp.tobytes())
    return ["redact", src, "-o", tmp / "out.png"], tmp / "out.png"


def video_declaring_15000x15000(tmp: Path, m: Media) -> tuple[Args, Path]:
    src = tmp / "huge.avi"
    src.write_bytes(avi_declaring(15_000, 15_000))
    return ["redact", src, "-o", tmp / "out.mp4"], tmp / "out.mp4"


def video_frame_over_the_limit(tmp: Path, m: Media) -> tuple[Args, Path]:
    """Declared 64x64, and so are its first frames; the third is 1200x1000."""
    src = tmp / "grows.avi"
    src.write_bytes(mjpeg_avi([(64, 64), (64, 64), (1200, 1000)]))
    profile = _config(tmp, "[input]\nmax_image_area = 1_000_000\n")
    return ["redact", src, "-o", tmp / "out.mp4", "--config", profile], tmp / "out.mp4"


@dataclass(frozen=True)
class Case:
    build: Builder
    code: int
    mentions: str  # a word the one error line must contain, so the right check is what failed


CASES = {
    "missing-input": Case(missing_input, 2, "nothere.mp4"),
    "text-named-mp4": Case(text_as_mp4, 1, "notes.mp4: not a readable video (Invalid data"),
    "truncated-mp4": Case(truncated_mp4, 1, "cut.mp4"),
    "truncated-faststart-half": Case(truncated_faststart_half, 1, "cut.mp4"),
    "truncated-faststart-late": Case(truncated_faststart_late, 1, "cut.mp4"),
    "truncated-on-frame-boundary": Case(truncated_on_frame_boundary, 1, "cut.mp4"),
    "zero-byte-jpg": Case(zero_byte_jpg, 1, "the file is empty"),
    "header-only-jpg": Case(header_only_jpg, 1, "cut short"),
    "unwritable-output-folder": Case(unwritable_folder, 1, "unwritable"),
    "output-is-input": Case(output_is_input, 2, "clip.mp4"),
    "output-is-input-via-dotdot": Case(output_is_input_spelled_differently, 2, "clip.mp4"),
    "output-is-input-image": Case(output_is_input_image, 2, "face.png"),
    "unknown-option": Case(unknown_option, 2, "--bogus"),
    "unknown-subcommand": Case(unknown_subcommand, 2, "frobnicate"),
    "config-unknown-key": Case(_with_config("[redact]\nbogus = true\n"), 2, "bogus"),
    "config-unknown-section": Case(_with_config("[identify]\nenabled = true\n"), 2, "identify"),
    "config-method-none": Case(_with_config('[redact]\nmethod = "none"\n'), 2, "method"),
    "config-threshold-0.99": Case(
        _with_config("[detector.centerface]\nthreshold = 0.99\n"), 2, "threshold"
    ),
    "config-mask-scale-0.5": Case(_with_config("[redact]\nmask_scale = 0.5\n"), 2, "mask_scale"),
    "existing-output-no-overwrite": Case(existing_output, 2, "out.png"),
    "png-bomb": Case(
        png_bomb, 1, "declares 100000x100000 pixels, over the limit of 100,000,000 ([input]"
    ),
    "jpeg-bomb": Case(jpeg_bomb, 1, "bomb.jpg: declares 20000x20000 pixels, over the limit"),
    "bmp-named-png": Case(bmp_named_png, 1, "photo.png: not a readable image"),
    "video-declaring-15000x15000": Case(
        video_declaring_15000x15000, 1, "huge.avi: declares 15000x15000 pixels a frame, over"
    ),
    "video-frame-over-the-limit": Case(
        video_frame_over_the_limit, 1, "frame 2 has 1200x1000 pixels a frame, over the limit"
    ),
    "config-max-image-area-string": Case(
        _with_config('[input]\nmax_image_area = "100000000"\n'), 2, "max_image_area"
    ),
    "config-max-image-area-too-high": Case(
        _with_config("[input]\nmax_image_area = 1_000_000_000\n"), 2, "max_image_area"
    ),
}


def _snapshot(root: Path) -> dict[Path, str]:
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for p in tmp_path.rglob("*"):  # let pytest clean up a folder the test locked
        if p.is_dir():
            p.chmod(0o700)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_fails_cleanly(case: Case, media: Media, workdir: Path) -> None:
    args, must_not_exist = case.build(workdir, media)
    before = _snapshot(workdir)

    result = veil(*args, cwd=workdir)

    assert result.returncode == case.code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    assert lines[0].startswith("veil: error:") and lines[0].strip() != "veil: error:", lines
    assert case.mentions in lines[0]
    assert "[Errno" not in lines[0]  # words, not FFmpeg's error codes
    assert result.stdout == ""
    # No output under its final name, no hidden partial file, no input touched or removed.
    assert not must_not_exist.exists()
    assert not list(workdir.rglob(PARTIAL_GLOB))
    after = _snapshot(workdir)
    for log in [p for p in after if p.name == DEFAULT_LOG_NAME and p not in before]:
        # A run that started and failed stays on the record: its log verifies and says so.
        verdict = verify_log(workdir / log)
        assert verdict.ok, verdict.problems
        assert [run.status for run in verdict.runs] == ["error"]
        assert not verdict.files
        del after[log]
    assert after == before


def test_overwrite_is_what_replaces_an_existing_output(media: Media, tmp_path: Path) -> None:
    """The control for the case above: the same command with --overwrite does replace it."""
    src = _copy(media.face_png, tmp_path / "face.png")
    existing = tmp_path / "out.png"
    existing.write_bytes(b"old")
    result = veil("redact", src, "-o", existing, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert existing.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.rglob(PARTIAL_GLOB))


def test_folder_with_one_bad_file_writes_the_others_and_exits_1(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    assert cv2.imwrite(str(src / "a.png"), astronaut)
    (src / "b_bad.jpg").write_bytes(b"")  # sorted between the good ones: the run must go on
    assert cv2.imwrite(str(src / "c.jpg"), astronaut)
    assert cv2.imwrite(str(src / "sub" / "d.png"), astronaut)
    (src / "notes.txt").write_text("not media, ignored\n", encoding="utf-8")
    before = _snapshot(src)
    out = tmp_path / "out"

    result = veil("redact", src, "-o", out)

    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("veil: error:")]
    assert any("b_bad.jpg" in line for line in errors), result.stderr
    assert not any(name in line for line in errors for name in ("a.png", "c.jpg", "d.png"))
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "c.jpg", "sub/d.png", DEFAULT_LOG_NAME]
    written.remove(DEFAULT_LOG_NAME)
    verdict = verify_log(out / DEFAULT_LOG_NAME, media=out)
    assert verdict.ok, verdict.problems
    assert [run.status for run in verdict.runs] == ["error"]
    assert sorted(verdict.files) == ["a.png", "c.jpg", "sub/d.png"]
    fx, fy, fw, fh = (int(v) for v in ASTRONAUT_FACE)
    for rel in written:
        image = cv2.imread(str(out / rel))
        assert image is not None and image.shape == astronaut.shape
        face_change = np.abs(
            image[fy : fy + fh, fx : fx + fw].astype(int) - astronaut[fy : fy + fh, fx : fx + fw]
        ).mean()
        assert face_change > 20, f"{rel}: the face looks untouched"
    assert not list(tmp_path.rglob(PARTIAL_GLOB))
    assert _snapshot(src) == before


def test_image_run_succeeds(media: Media, astronaut: np.ndarray, tmp_path: Path) -> None:
    src = _copy(media.face_png, tmp_path / "face.png")
    out = tmp_path / "out.png"

    result = veil("redact", src, "-o", out)

    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == astronaut.shape and image.dtype == np.uint8
    fx, fy, fw, fh = (int(v) for v in ASTRONAUT_FACE)
    face = (slice(fy, fy + fh), slice(fx, fx + fw))
    assert np.abs(image[face].astype(int) - astronaut[face]).mean() > 20, "face not redacted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png", "out.png", DEFAULT_LOG_NAME]


def test_a_folder_run_stops_when_its_audit_log_fails(
    astronaut: np.ndarray, tmp_path: Path, tmpfs: Callable[[int], Path]
) -> None:
    """A failed input is skipped, but a failed audit log is not: every later output would be
    published with no record. The log sits on a disk that fills after a few files."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    small = astronaut[0:256, 100:356]
    for n in range(10):
        assert cv2.imwrite(str(src / f"{n}.png"), small)
    disk = tmpfs(1)
    (disk / "filler").write_bytes(bytes((1 << 20) - (8 << 10)))  # 8 KiB left: a few records
    log = disk / DEFAULT_LOG_NAME

    result = veil("redact", src, "-o", out, "--audit-log", log)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("veil: error: "), result.stderr
    published = sorted(p.name for p in out.iterdir())
    logged = [
        json.loads(line)["name"]
        for line in log.read_bytes().splitlines()
        if line.endswith(b"}") and json.loads(line)["type"] == "file_closed"
    ]
    assert logged, "the disk filled before any file was logged: the test proves nothing"
    assert len(published) < 10
    # At most the output whose record failed is there unlogged; nothing was written after it.
    assert len(published) <= len(logged) + 1


@pytest.mark.parametrize("others", [3, 40])
def test_a_folder_run_says_once_which_files_it_skipped(
    astronaut: np.ndarray, tmp_path: Path, others: int
) -> None:
    """Issue 22: files that are not media were left out without a word. Now one line names them
    (the first few, and how many more): not one per file, and neither hidden files nor the log
    and status file of a live run's folder, which are Veil's own."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / ".git").mkdir()
    assert cv2.imwrite(str(src / "a.png"), astronaut[0:256, 100:356])
    (src / ".DS_Store").write_bytes(b"\0")
    (src / ".git" / "config").write_text("[core]\n", encoding="utf-8")
    (src / DEFAULT_LOG_NAME).write_text("{}\n", encoding="utf-8")
    (src / "status.json").write_text('{"state": "stopped"}\n', encoding="utf-8")
    strays = ["notes.txt", "a.pdf", "sub/x.doc"] + [f"sub/n{i:02}.txt" for i in range(others - 3)]
    for name in strays:
        (src / name).write_text("not media\n", encoding="utf-8")

    result = veil("redact", src, "-o", tmp_path / "out")

    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert line.startswith(f"veil: skipped {others} files that are not media: a.pdf, notes.txt, ")
    named = line.split(": ", 2)[2].split(", ")
    if others > 5:
        assert named.pop() == f"and {others - 5} more"
    assert len(named) == min(others, 5) and set(named) <= set(strays)
    for own in (".DS_Store", ".git", DEFAULT_LOG_NAME, "status.json"):
        assert own not in line
    assert len(result.stderr.splitlines()) == 3  # skipped, a.png's summary, the audit log
