"""The `veil` command itself (edge/cli/main.py): a table of commands, each loaded only when it
runs, and a reader that stops reading (`veil ... | head -1`) ends it quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli.main import COMMANDS, SIGPIPE_EXIT, main

# What the light paths must not load: the detector's runtime, the codecs, the config models and
# the audit log's crypto are for the commands that use them.
HEAVY = ("onnxruntime", "cv2", "av", "numpy", "pydantic", "cryptography", "tqdm")


def _status_file(folder: Path) -> Path:
    path = folder / "status.json"
    path.write_text('{"state": "stopped", "frames_in": 3}', encoding="utf-8")
    return path


# `python -m edge ARGS`, listing every module loaded by the time it exits. (Not -X importtime:
# it does not see what importlib.import_module loads.)
_LISTING = """
import atexit, os, runpy, sys
def listing():
    with open(os.environ["VEIL_TEST_MODULES"], "w", encoding="utf-8") as out:
        out.write("\\n".join(sys.modules))
atexit.register(listing)
runpy.run_module("edge", run_name="__main__", alter_sys=True)
"""


def imported(tmp_path: Path, *args: str | Path) -> set[str]:
    """Every module a real `veil ARGS` has loaded when it exits."""
    listing = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _LISTING, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "VEIL_TEST_MODULES": str(listing)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(listing.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["status", "STATUS"]], ids=str)
def test_help_and_a_light_command_load_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    names = imported(tmp_path, *(_status_file(tmp_path) if a == "STATUS" else a for a in args))
    assert "edge.cli.main" in names  # the listing is read right
    assert sorted(n for n in names if n.split(".")[0] in HEAVY) == []


def test_a_command_loads_its_own_module_only(tmp_path: Path) -> None:
    names = imported(tmp_path, "status", _status_file(tmp_path))
    loaded = {entry.module for entry in COMMANDS.values()} & names
    assert loaded == {COMMANDS["status"].module}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_owns_its_parser(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: veil {name} ")


def _into_closed_pipe(
    args: list[str | Path], *, buffered: bool
) -> subprocess.CompletedProcess[bytes]:
    """`veil ARGS` with a stdout whose reader has gone, as after `| head -1` has exited."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "edge", *map(str, args)],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write)


# Buffered (as Python writes to a pipe), the write fails at the final flush; unbuffered, in the
# command's own print. (Not `--help` unbuffered: argparse ignores a failed write of its help.)
@pytest.mark.parametrize(
    ("args", "buffered"),
    [
        (["models", "verify"], True),
        (["models", "verify"], False),
        (["status", "--json", "STATUS"], True),
        (["status", "--json", "STATUS"], False),
        (["--help"], True),
    ],
    ids=str,
)
def test_a_reader_that_has_gone_ends_veil_quietly(
    args: list[str], buffered: bool, tmp_path: Path
) -> None:
    status = _status_file(tmp_path)
    proc = _into_closed_pipe([status if a == "STATUS" else a for a in args], buffered=buffered)
    assert proc.stderr.decode() == ""
    assert proc.returncode == SIGPIPE_EXIT == 141


def test_an_error_still_has_its_line_when_stdout_has_no_reader(tmp_path: Path) -> None:
    proc = _into_closed_pipe(["status", tmp_path / "none.json"], buffered=True)
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("veil: error: no status file at")


def test_a_broken_pipe_that_is_not_the_readers_is_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stdout here is pytest's capture, which has a reader: the pipe that broke is another one
    # (a socket, a child's), a fault that must surface.
    import edge.cli.status_cmd as status_cmd

    def broken(path: Path, *, as_json: bool = False) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(status_cmd, "status_command", broken)
    with pytest.raises(BrokenPipeError):
        main(["status", str(_status_file(tmp_path))])
