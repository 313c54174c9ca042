"""File names as an attacker writes them (issue 21): control characters, bytes that are not UTF-8,
names too long for the temporary file. Through the real `veil` command: a name the audit log
cannot hold is refused before anything is published, a folder run skips it and writes the rest,
and no output line ever carries a raw control character."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.audit import DEFAULT_LOG_NAME, verify_log

HOSTILE = {
    "newline": "evil\nx.png",
    "escape": "\x1b[31mred.png",
    "c1-csi": "\x9b31mcsi.png",
    "delete": "del\x7f.png",
    "not-utf8": os.fsdecode(b"bad\xff\xfe.png"),
}
SHOWN = {
    "newline": "evil\\nx.png",
    "escape": "\\x1b[31mred.png",
    "c1-csi": "\\x9b31mcsi.png",
    "delete": "del\\x7f.png",
    "not-utf8": "bad\\xff\\xfe.png",
}


def veil_bytes(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real command line, its output kept as bytes: what a terminal would be sent."""
    return subprocess.run(
        [sys.executable, "-m", "edge", *(os.fsencode(a) for a in args)],
        capture_output=True,
        cwd=cwd,
        timeout=600,
    )


def printable_lines(data: bytes) -> list[str]:
    """The lines of an output, which must be UTF-8 without any control or format character."""
    text = data.decode("utf-8")  # a raw undecodable byte fails here
    bad = [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs")]
    assert bad == [], f"raw control characters in the output: {bad!r}"
    return text.splitlines()


@pytest.fixture(scope="module")
def face_png(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("face") / "face.png"
    assert cv2.imwrite(str(path), astronaut)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clip.mp4", "clip.mp4"),
        ("café – ünïcode.png", "café – ünïcode.png"),
        *((HOSTILE[k], SHOWN[k]) for k in HOSTILE),
        ("\u202egnp.exe", "\\u202egnp.exe"),  # a right-to-left override: shown, not obeyed
        ("tab\there", "tab\\there"),
    ],
)
def test_shown_escapes_what_a_terminal_would_act_on(text: str, expected: str) -> None:
    from edge.names import shown

    assert shown(text) == expected


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_input_name_is_refused_with_one_escaped_line(
    kind: str, face_png: Path, tmp_path: Path
) -> None:
    src = tmp_path / HOSTILE[kind]
    shutil.copy(face_png, src)
    result = veil_bytes("redact", src.name, "-o", "out", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    lines = printable_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("veil: error: input '"), lines
    assert SHOWN[kind] in lines[0]
    assert not (tmp_path / "out").exists()  # nothing published, no log begun


def test_a_folder_run_skips_hostile_names_and_writes_and_logs_the_rest(
    face_png: Path, tmp_path: Path
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(face_png, src / "a.png")
    for name in HOSTILE.values():
        shutil.copy(face_png, src / name)
    shutil.copy(face_png, src / "\u202egnp.png")  # odd but loggable: written, shown escaped

    result = veil_bytes("redact", src, "-o", out)

    assert result.returncode == 1, result.stderr
    errors = [line for line in printable_lines(result.stderr) if line.startswith("veil: error:")]
    for kind in HOSTILE:
        assert sum(SHOWN[kind] in line for line in errors) == 1, (kind, errors)
    # Nothing published unlogged: the folder holds exactly what the log names.
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(["a.png", "\u202egnp.png", DEFAULT_LOG_NAME])
    verdict = verify_log(out / DEFAULT_LOG_NAME, media=out)
    assert verdict.ok, verdict.problems
    assert sorted(verdict.files) == sorted(["a.png", "\u202egnp.png"])
    checked = veil_bytes("audit", "verify", out / DEFAULT_LOG_NAME, "--media", out)
    assert checked.returncode == 0, checked.stdout
    printable_lines(checked.stdout)
    tables = veil_bytes("audit", "show", out / DEFAULT_LOG_NAME)
    assert tables.returncode == 0, tables.stdout
    assert "\\u202egnp.png" in "\n".join(printable_lines(tables.stdout))


def test_verify_names_a_hostile_file_in_the_folder_escaped(face_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert veil_bytes("redact", face_png, "-o", out).returncode == 0
    for name in HOSTILE.values():
        (out / name).write_bytes(b"planted")
    result = veil_bytes("audit", "verify", out / DEFAULT_LOG_NAME, "--media", out)
    assert result.returncode == 1
    lines = printable_lines(result.stdout)
    failed = [line for line in lines if line.startswith("FAILED:")]
    assert len(failed) == 1 and "(and 4 more problem(s) after it)" in failed[0], lines
    problems = verify_log(out / DEFAULT_LOG_NAME, media=out).problems
    assert sorted(str(p) for p in problems) == sorted(
        f"{SHOWN[k]} is a file the log does not name: added, or written by a run that was not "
        "logged"
        for k in HOSTILE
    )


def test_an_output_the_log_could_not_name_is_refused_before_it_is_written(
    face_png: Path, tmp_path: Path
) -> None:
    """The name is checked as the log would hold it, relative to the log's folder: here the
    working folder's own name, which the command line never spells, holds an escape."""
    cwd = tmp_path / "ev\x1bil"
    cwd.mkdir()
    shutil.copy(face_png, cwd / "face.png")
    log = tmp_path / "logs" / DEFAULT_LOG_NAME
    result = veil_bytes("redact", "face.png", "-o", "out", "--audit-log", log, cwd=cwd)
    assert result.returncode == 1
    errors = [line for line in printable_lines(result.stderr) if line.startswith("veil: error:")]
    assert len(errors) == 1 and "the audit log cannot hold this name" in errors[0], errors
    assert not (cwd / "out").exists() or not any((cwd / "out").iterdir())
    verdict = verify_log(log)
    assert verdict.ok and not verdict.files and [r.status for r in verdict.runs] == ["error"]


def test_a_236_character_input_name_is_redacted(face_png: Path, tmp_path: Path) -> None:
    """Its output's temporary name would be 268 bytes: it is cut to fit in 255."""
    stem = "n" * 232
    shutil.copy(face_png, tmp_path / f"{stem}.png")
    out = tmp_path / "out"
    result = veil_bytes("redact", tmp_path / f"{stem}.png", "-o", out)
    assert result.returncode == 0, result.stderr
    assert (out / f"{stem}.redacted.png").is_file()
    assert verify_log(out / DEFAULT_LOG_NAME, media=out).ok


def test_a_folder_of_255_byte_names_is_redacted(face_png: Path, tmp_path: Path) -> None:
    names = ["n" * 251 + ".png", "é" * 125 + "n.png"]  # 255 bytes each, the second in UTF-8
    (tmp_path / "in").mkdir()
    for name in names:
        shutil.copy(face_png, tmp_path / "in" / name)
    out = tmp_path / "out"
    result = veil_bytes("redact", tmp_path / "in", "-o", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, DEFAULT_LOG_NAME])
    assert verify_log(out / DEFAULT_LOG_NAME, media=out).ok


def test_an_output_name_over_name_max_is_refused_before_any_work(
    face_png: Path, tmp_path: Path
) -> None:
    name = "n" * 246 + ".png"  # 250 bytes; "NAME.redacted.png" would be 259
    shutil.copy(face_png, tmp_path / name)
    result = veil_bytes("redact", name, cwd=tmp_path)
    assert result.returncode == 2
    lines = printable_lines(result.stderr)
    assert len(lines) == 1 and "the name is 259 bytes, over the 255" in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no output, no log
