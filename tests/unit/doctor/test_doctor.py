"""`veil doctor` on this machine, for real where the thing exists here (OpenCV, onnxruntime,
LiteRT, the models, key modes, the recordings disk), with fakes only for hardware: the fake
picamera2, a fake `vcgencmd` on PATH, fake thermal zones and the service's environment."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cv2
import pytest

from conftest import FAKES
from edge.audit.keys import PRIVATE_NAME, load_or_create
from edge.doctor import CHECKS, Context, Result, device, run_checks, runtime
from edge.models.store import models_dir
from edge.sinks.preview.access import TOKEN_NAME

LEVELS = ("ok", "warn", "fail")


def _doctor(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`veil doctor` in a child process, outside any service (no systemd variables)."""
    child = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "NOTIFY_SOCKET")}
    child.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "edge", "doctor", *map(str, args)],
        capture_output=True,
        text=True,
        env=child,
        timeout=120,
    )


def _lines(stdout: str) -> dict[str, str]:
    """Each check's line, by name; every line must start with its level."""
    found = {}
    for line in stdout.splitlines():
        level, name, _ = line.split(maxsplit=2)
        assert level in LEVELS, line
        found[name] = line
    return found


def test_doctor_on_this_machine(tmp_path: Path) -> None:
    proc = _doctor("--key-dir", tmp_path / "keys", "--output-dir", tmp_path / "rec")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = _lines(proc.stdout)
    assert list(lines) == [name for name, _ in CHECKS]
    assert lines["models"].startswith("ok ")
    assert lines["litert"].startswith("ok ") and lines["onnxruntime"].startswith("ok ")
    assert "no device key yet" in lines["keys"] and lines["keys"].startswith("warn")
    assert lines["recordings"].startswith("ok ")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "rec").exists()  # the check leaves nothing behind


def test_group_readable_key_fails(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    load_or_create(folder)
    key = folder / PRIVATE_NAME
    assert device.check_keys(Context(key_dir=folder)).level == "ok"
    key.chmod(0o640)
    proc = _doctor("--key-dir", folder, "--output-dir", tmp_path / "rec")
    assert proc.returncode == 1
    line = _lines(proc.stdout)["keys"]
    assert line.startswith("fail") and f"chmod 600 {key}" in line
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr


def test_key_folder_and_token_modes(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    load_or_create(folder)
    folder.chmod(0o777)
    result = device.check_keys(Context(key_dir=folder))
    assert result.level == "fail" and f"chmod 700 {folder}" in result.fix
    folder.chmod(0o700)
    token = folder / TOKEN_NAME
    token.write_text("not-a-real-token")
    token.chmod(0o644)
    result = device.check_keys(Context(key_dir=folder))
    assert result.level == "fail" and f"chmod 600 {token}" in result.fix
    assert "not-a-real-token" not in result.detail + result.fix
    token.chmod(0o600)
    result = device.check_keys(Context(key_dir=folder))
    assert result.level == "ok" and "preview token 0600" in result.detail


def test_corrupted_model_fails(tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir(), copy)
    victim = next(p for p in sorted(copy.iterdir()) if p.suffix in (".onnx", ".tflite"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = _doctor(
        "--key-dir", tmp_path / "keys", "--output-dir", tmp_path / "rec",
        env={"VEIL_MODELS_DIR": str(copy)},
    )  # fmt: skip
    assert proc.returncode == 1
    line = _lines(proc.stdout)["models"]
    assert line.startswith("fail") and "mismatch" in line and "veil models fetch" in line


def test_unwritable_recordings_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = device.check_recordings(Context(output_dir=blocker / "rec"))  # fails even as root
    assert result.level == "fail" and "--output-dir" in result.fix
    proc = _doctor("--key-dir", tmp_path / "keys", "--output-dir", blocker / "rec")
    assert proc.returncode == 1 and _lines(proc.stdout)["recordings"].startswith("fail")


def test_recordings_free_space_and_cleanup(tmp_path: Path) -> None:
    profile = tmp_path / "big.toml"
    profile.write_text(f"[record]\nmin_free_bytes = {1 << 60}\n")
    result = device.check_recordings(Context(config=profile, output_dir=tmp_path / "a" / "b"))
    assert result.level == "warn" and "min_free_bytes" in result.detail
    assert not (tmp_path / "a").exists()
    result = device.check_recordings(Context(output_dir=tmp_path))
    assert result.level == "ok" and "GB free" in result.detail
    assert list(tmp_path.iterdir()) == [profile]


def _fake_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, out: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\necho '{out}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_vcgencmd_under_voltage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_command(tmp_path, monkeypatch, "vcgencmd", "throttled=0x50005")
    result = device.check_throttling(Context())
    assert result.level == "warn"
    assert "under-voltage now" in result.detail and "throttled since boot" in result.detail
    assert "power supply" in result.fix
    _fake_command(tmp_path, monkeypatch, "vcgencmd", "throttled=0x0")
    assert device.check_throttling(Context()).level == "ok"


def test_throttle_bits() -> None:
    assert device.throttle_meaning(0) == []
    assert device.throttle_meaning(0x80008) == [
        "soft temperature limit now",
        "soft temperature limit since boot",
    ]


def _zone(root: Path, millideg: int) -> Path:
    zone = root / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text(f"{millideg}\n")
    return root


def test_temperature(tmp_path: Path) -> None:
    hot = device.check_temperature(Context(thermal_root=_zone(tmp_path / "hot", 85000)))
    assert hot.level == "warn" and "85.0" in hot.detail and hot.fix
    cool = device.check_temperature(Context(thermal_root=_zone(tmp_path / "cool", 45000)))
    assert cool.level == "ok" and "45.0" in cool.detail
    none = device.check_temperature(Context(thermal_root=tmp_path / "none"))
    assert none == Result("temperature", "ok", "not reported")


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The fake picamera2 on sys.path for one test, as tests/unit/capture/test_picamera2.py puts
    it."""

    def forget() -> None:
        for name in [n for n in sys.modules if n == "picamera2" or n.startswith("picamera2.")]:
            del sys.modules[name]

    monkeypatch.delenv("VEIL_FAKE_PICAMERA2_ABSENT", raising=False)
    monkeypatch.syspath_prepend(str(FAKES))
    forget()
    module = importlib.import_module("picamera2")
    assert module.FAKE
    yield module
    forget()


def test_picamera2_cameras(fake_picamera2: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runtime.check_picamera2(Context())
    assert result.level == "ok" and "1 camera" in result.detail
    monkeypatch.setenv("VEIL_FAKE_PICAMERA2_ABSENT", "1")
    result = runtime.check_picamera2(Context())
    assert result.level == "warn" and "camera not found" in result.detail
    assert "rpicam-hello --list-cameras" in result.fix


def test_picamera2_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import now raises ImportError
    result = runtime.check_picamera2(Context())
    assert result.level == "warn" and "sudo apt install python3-picamera2" in result.fix
    assert "--system-site-packages" in result.fix


def test_json_output(tmp_path: Path) -> None:
    proc = _doctor("--key-dir", tmp_path / "keys", "--output-dir", tmp_path / "rec", "--json")
    report = json.loads(proc.stdout)
    assert [c["name"] for c in report["checks"]] == [name for name, _ in CHECKS]
    assert all(c["level"] in LEVELS and c["detail"] for c in report["checks"])
    assert report["fail"] == 0 and proc.returncode == 0


def test_opencv_is_the_loaded_one(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runtime.check_opencv(Context())
    assert cv2.__version__ in result.detail and str(Path(cv2.__file__).parent) in result.detail
    if hasattr(cv2, "FaceRecognizerSF"):
        assert result.level == "warn" and "Veil never calls it" in result.fix
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n    GStreamer: YES\n")
    for name in ("face", "FaceRecognizerSF"):
        if hasattr(cv2, name):
            monkeypatch.delattr(cv2, name)
    assert runtime.check_opencv(Context()) == Result(
        "opencv", "ok", result.detail.split(",")[0] + ", GStreamer", ""
    )


def test_runtime_present_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    ort = runtime.check_onnxruntime(Context())
    assert ort.level == "ok" and "CPUExecutionProvider" in ort.detail
    assert runtime.check_litert(Context()).level == "ok"
    assert runtime.check_glibc(Context()).level in ("ok", "fail")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    missing = runtime.check_onnxruntime(Context())
    assert missing.level == "fail" and "pip install onnxruntime" in missing.fix
    assert runtime.check_litert(Context()).level == "fail"


@pytest.mark.parametrize(
    ("machine", "version", "bits", "level", "words"),
    [
        ("x86_64", "glibc 2.36", 64, "ok", "2.36"),
        ("aarch64", "glibc 2.36", 64, "ok", "aarch64"),
        ("aarch64", "glibc 2.31", 64, "fail", "manylinux_2_27"),
        ("aarch64", "glibc 2.36", 32, "fail", "64-bit OS"),
        ("armv7l", "glibc 2.36", 32, "fail", "no 32-bit wheels"),
        ("x86_64", None, 64, "warn", "glibc"),
    ],
)
def test_glibc_verdicts(
    machine: str, version: str | None, bits: int, level: str, words: str
) -> None:
    result = runtime.glibc_result(machine, version, bits)
    assert result.level == level and words in result.detail + result.fix


def test_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """No packet leaves the test: connect and send are replaced by what the kernel would do."""
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    result = device.check_sandbox(Context())
    assert result.level == "ok" and "not running as the service" in result.detail
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: None)

    def denied(self: socket.socket, data: bytes) -> int:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(socket.socket, "send", denied)
    assert device.check_sandbox(Context()).detail.startswith("network closed (IPAddressDeny)")
    monkeypatch.setattr(socket.socket, "send", lambda self, data: len(data))
    result = device.check_sandbox(Context())
    assert result.level == "warn" and "can reach the network" in result.detail


def test_clock_from_timedatectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_command(tmp_path, monkeypatch, "timedatectl", "yes")
    assert device.check_clock(Context()).level == "ok"
    _fake_command(tmp_path, monkeypatch, "timedatectl", "no")
    result = device.check_clock(Context())
    assert result.level == "warn" and "chrony" in result.fix


def test_a_broken_check_is_a_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(context: Context) -> Result:
        raise RuntimeError("secret detail")

    monkeypatch.setattr("edge.doctor.CHECKS", (("broken", broken),))
    (result,) = run_checks(Context())
    assert result.level == "fail" and "RuntimeError" in result.detail
    assert "secret detail" not in result.detail + result.fix
