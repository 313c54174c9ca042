"""No telemetry: real `veil` runs, each in a fresh empty HOME (XDG_CACHE_HOME unset) and traced
by strace, open no internet socket and leave nothing in HOME, onnxruntime's device id included.

onnxruntime's wheels carry Microsoft's telemetry (edge/telemetry.py): importing onnxruntime
writes `~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid`, and about ten seconds later the
process looks up the collector's host. A control run of onnxruntime alone, in a network
namespace of its own so that nothing leaves this machine, shows that the probe sees both. Every
Veil run starts with `ORT_DISABLE_TELEMETRY=0` in its environment: no setting turns it back on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, ROOT, Clip
from edge.doctor import runtime
from edge.doctor.base import Context
from edge.sample import write_sample
from edge.telemetry import ORT_STORE, ORT_SWITCH

# Longer than onnxruntime waits before its first upload (about 9 s after the import here).
LIVE_SECONDS = 20
# The control: onnxruntime alone, kept alive until its device id is written (at import, or a
# little later on a busy machine), then as long as the live run, for its first upload attempt.
CONTROL = f"""
import os, time, onnxruntime
store = os.path.join(os.environ["HOME"], ".cache", {str(ORT_STORE)!r})
waited = time.monotonic() + 120
while not os.path.isfile(os.path.join(store, "deviceid")) and time.monotonic() < waited:
    time.sleep(0.5)
time.sleep({LIVE_SECONDS})
"""
VEIL = (sys.executable, "-m", "edge")
# CenterFace (onnxruntime) at its cheapest, so that the live run keeps pace on a shared machine.
LIGHT = "[detector.centerface]\nmax_side = 160\nfine_scale = 0.0\n[live]\nmax_latency_ms = 2000.0\n"


def _tool(name: str) -> str:
    """The tool's path; skips without it, but fails on CI, which installs it
    (tests/system-packages.sh)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (tests/system-packages.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _start(
    args: Sequence[str | Path],
    home: Path,
    trace: Path,
    *,
    prefix: Sequence[str] = (),
    switch: str | None = "0",
) -> subprocess.Popen[str]:
    """`args` traced by strace (every thread and child process) into `trace`, in the empty
    folder `home` as HOME, with onnxruntime's switch set to `switch` (None: not set at all)."""
    home.mkdir(parents=True)
    # onnxruntime's telemetry also stays off wherever `CI` is set (as on the project's CI): both
    # runs go without it, as on a camera, so that the control shows the telemetry and Veil's run
    # is tested against it.
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", ORT_SWITCH, "CI")}
    env["HOME"] = str(home)
    if switch is not None:
        env[ORT_SWITCH] = switch
    strace = [_tool("strace"), "-f", "-qq", "-e", "trace=%network", "-o", str(trace)]
    return subprocess.Popen(
        [*prefix, *strace, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=home.parent,
    )


def _finish(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def _internet(trace: Path) -> list[str]:
    """Every network call on an internet socket (an address lookup too: glibc's resolver talks
    to its DNS server over one); local sockets (AF_UNIX, AF_NETLINK) are not counted."""
    lines = trace.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if "AF_INET" in line or "htons(53)" in line]


def _left_in(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def test_a_live_run_looks_nothing_up_and_leaves_no_device_id(tmp_path: Path) -> None:
    """`veil run` for longer than onnxruntime waits before its first upload, beside a control:
    onnxruntime alone, its switch not set, with no network at all (`unshare -n`)."""
    if os.geteuid() != 0:
        reason = "the control run needs a network namespace of its own (unshare -n, as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    clip = tmp_path / "clip.mp4"
    write_sample(clip, width=160, height=96, seconds=1.0)
    profile = tmp_path / "light.toml"
    profile.write_text(LIGHT, encoding="utf-8")
    control = _start(
        [sys.executable, "-c", CONTROL],
        tmp_path / "control-home",
        tmp_path / "control.trace",
        prefix=[_tool("unshare"), "-n"],
        switch=None,
    )
    live = _start(
        [
            *VEIL,
            "run",
            "--config",
            profile,
            "--source",
            f"file:{clip}",
            "--realtime",
            "--loop",
            "--duration",
            str(LIVE_SECONDS),
            "--output-dir",
            tmp_path / "rec",
        ],  # fmt: skip
        tmp_path / "veil-home",
        tmp_path / "veil.trace",
    )
    _finish(control)
    _finish(live)
    # The probe sees what it looks for: onnxruntime alone writes its id and tries to send.
    assert (tmp_path / "control-home" / ".cache" / ORT_STORE / "deviceid").is_file()
    assert _internet(tmp_path / "control.trace"), "the control made no network call"
    assert _internet(tmp_path / "veil.trace") == []
    assert _left_in(tmp_path / "veil-home") == []
    assert list((tmp_path / "rec").glob("*.mp4")), "the live run recorded nothing"


def test_redact_and_verify_send_nothing_and_leave_nothing(
    sample_clip: Clip, astronaut: np.ndarray, tmp_path: Path
) -> None:
    """Every library Veil loads, through `veil redact` (CenterFace on onnxruntime and BlazeFace
    on LiteRT, an ensemble; FFmpeg; OpenCV; c2pa signing) and `veil audit verify --media` (c2pa
    reading): no internet socket, nothing in HOME."""
    pytest.importorskip("c2pa")  # the optional extra; the test extra installs it
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(sample_clip.path, src / "clip.mp4")
    assert cv2.imwrite(str(src / "face.png"), astronaut)
    profile = tmp_path / "p.toml"
    profile.write_text('[detector]\nbackend = "ensemble"\n[audit]\nc2pa = true\n')
    out = tmp_path / "out"
    redact = [*VEIL, "redact", src, "-o", out, "--config", profile]
    _finish(_start(redact, tmp_path / "home1", tmp_path / "redact.trace"))
    verify = [*VEIL, "audit", "verify", out / "veil-audit.jsonl", "--media", out]
    _finish(_start(verify, tmp_path / "home2", tmp_path / "verify.trace"))
    for name in ("redact", "verify"):
        assert _internet(tmp_path / f"{name}.trace") == [], name
    assert _left_in(tmp_path / "home1") == _left_in(tmp_path / "home2") == []
    assert len(list(out.glob("*.mp4"))) == len(list(out.glob("*.png"))) == 1


def test_eval_sends_nothing_and_leaves_nothing(astronaut: np.ndarray, tmp_path: Path) -> None:
    """`veil eval`, which runs the detector on a labelled set the way docs/measurements.md's
    figures are measured: the same."""
    root = tmp_path / "set"
    root.mkdir()
    assert cv2.imwrite(str(root / "a.png"), astronaut)
    h, w = astronaut.shape[:2]
    image = {"file": "a.png", "width": w, "height": h, "faces": [list(ASTRONAUT_FACE)]}
    annotations = {"format": "faceblur-eval/1", "images": [image], "videos": []}
    (root / "annotations.json").write_text(json.dumps(annotations), encoding="utf-8")
    _finish(_start([*VEIL, "eval", root, "--no-sweep"], tmp_path / "home", tmp_path / "eval.trace"))
    assert _internet(tmp_path / "eval.trace") == []
    assert _left_in(tmp_path / "home") == []


# --- veil doctor --------------------------------------------------------------------------------


def _doctor_line(home: Path, *, switch: str = "1") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    env.update({"HOME": str(home), ORT_SWITCH: switch})
    proc = subprocess.run(
        [*VEIL, "doctor", "--json", "--key-dir", str(home.parent / "keys")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    return dict(checks["telemetry"])


def test_doctor_says_telemetry_is_off_and_leaves_no_device_id(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    line = _doctor_line(home, switch="0")  # the doctor imports onnxruntime itself
    assert line["level"] == "ok" and f"{ORT_SWITCH}=1" in line["detail"], line
    assert _left_in(home) == []


def test_doctor_finds_an_earlier_device_id_and_says_to_delete_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = home / ".cache" / ORT_STORE
    store.mkdir(parents=True)
    (store / "deviceid").write_text("4b82eec8-4be2-49b9-a011-5d093ae4f5e2")
    line = _doctor_line(home)
    assert line["level"] == "warn", line
    assert str(store) in line["detail"] and f"rm -r {store}" in line["fix"], line


def test_doctor_fails_where_telemetry_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only something that undid Veil's switch could get here; the check must still see it."""
    monkeypatch.setenv(ORT_SWITCH, "0")
    result = runtime.check_telemetry(Context())
    assert result.level == "fail" and ORT_SWITCH in result.detail and result.fix


def test_doctor_fails_where_onnxruntime_came_before_veil(tmp_path: Path) -> None:
    """A program that imports onnxruntime and then Veil's code: telemetry had started, and
    setting the switch afterwards cannot stop it; the check says so rather than ok."""
    code = (
        "import onnxruntime, edge.doctor.runtime as r, edge.doctor.base as b; "
        "print(r.check_telemetry(b.Context()).level)"
    )
    # As on a camera: without `CI`, which onnxruntime's telemetry reads as well.
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", ORT_SWITCH, "CI")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "HOME": str(tmp_path)},
        timeout=120,
    )
    assert proc.stdout == "fail\n", proc.stderr


def test_the_service_sets_the_switch_for_everything_it_starts() -> None:
    """Veil sets it on import; the unit sets it as well, for the whole service (a helper process
    or a library that imports onnxruntime before Veil's code runs)."""
    unit = ROOT / "deploy" / "veil.service"
    lines = {line.strip() for line in unit.read_text(encoding="utf-8").splitlines()}
    assert f"Environment={ORT_SWITCH}=1" in lines
