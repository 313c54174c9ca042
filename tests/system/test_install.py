"""deploy/raspberry-pi/install.sh and deploy/jetson/install.sh against a throwaway root.

`VEIL_ROOT` puts every path under a temporary folder and `VEIL_INSTALL_STUB=1` logs the system
steps (apt-get, useradd, systemctl, chown) instead of running them. pip and veil run for real:
Veil is built from this checkout into the throwaway venv with `--no-deps`, and the packages it
needs come from this test's own environment through PYTHONPATH (offline and fast). The models
are planted from the checkout, so `veil models fetch` only verifies them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, veil
from edge.audit.keys import PRIVATE_NAME
from edge.sinks.preview.access import TOKEN_NAME

PI = ROOT / "deploy" / "raspberry-pi" / "install.sh"
JETSON = ROOT / "deploy" / "jetson" / "install.sh"
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable))

# Off CI, a machine without bash skips these; on CI (CI=true) they run, and fail, instead.
pytestmark = pytest.mark.skipif(
    os.environ.get("CI") != "true" and (shutil.which("bash") is None or not BASE_PYTHON.exists()),
    reason="needs bash and a base python3 for the installers",
)


def env(root: Path, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_") and k != "PYTHONPATH"}
    out.update(
        VEIL_ROOT=str(root),
        VEIL_INSTALL_STUB="1",
        VEIL_UNAME_M="aarch64",
        VEIL_GLIBC_VERSION="2.36",
        VEIL_PYTHON=str(BASE_PYTHON),
        PYTHONPATH=sysconfig.get_paths()["purelib"],
    )
    out.update(extra)
    return out


def install(script: Path, root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    models = root / "opt" / "veil" / "models"
    if not models.exists():
        models.mkdir(parents=True)
        for model in (ROOT / "models").iterdir():
            if model.suffix in (".onnx", ".tflite"):
                shutil.copy(model, models / model.name)
    return subprocess.run(
        ["bash", str(script), "--pip-args", "--no-deps", *args],
        env=env(root, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@dataclass
class Installed:
    root: Path
    first: subprocess.CompletedProcess[str]
    stub_log: list[str]


@pytest.fixture(scope="module")
def pi(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("pi-root")
    proc = install(PI, root)
    assert proc.returncode == 0, proc.stderr
    return Installed(root, proc, (root / "install-stub.log").read_text().splitlines())


def test_the_pi_installer_lays_out_the_paths_with_their_modes(pi: Installed) -> None:
    root = pi.root
    state = root / "var/lib/veil"
    assert mode(state) == 0o700
    assert mode(state / "keys") == 0o700
    assert mode(state / "recordings") == 0o750
    assert (state / "keys" / PRIVATE_NAME).is_file()
    assert mode(state / "keys" / PRIVATE_NAME) & 0o077 == 0
    assert (state / "device.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    config = root / "etc/veil/veil.toml"
    assert mode(config) == 0o644
    assert config.read_bytes() == (ROOT / "configs" / "doorway.toml").read_bytes()
    unit = root / "etc/systemd/system/veil.service"
    assert unit.read_bytes() == (ROOT / "deploy" / "veil.service").read_bytes()
    assert mode(unit) == 0o644
    assert not (root / "etc/systemd/system/veil.service.d").exists()  # Jetson only
    assert (root / "opt/veil/deploy/README.md").is_file()
    wrapper = root / "usr/local/bin/veil"
    assert mode(wrapper) == 0o755 and "/opt/veil/venv/bin/veil" in wrapper.read_text()
    for model in (root / "opt/veil/models").iterdir():
        assert mode(model) & 0o444 == 0o444, model


def test_the_venv_sees_system_packages_and_runs_the_checkout(pi: Installed) -> None:
    venv = pi.root / "opt/veil/venv"
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    assert "numpy<2" in (pi.root / "opt/veil/constraints.txt").read_text()
    proc = subprocess.run(
        [str(venv / "bin/veil"), "check-config", str(pi.root / "etc/veil/veil.toml")],
        env=env(pi.root),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_system_steps_are_the_stubbed_ones(pi: Installed) -> None:
    log = "\n".join(pi.stub_log)
    assert "apt-get update" in pi.stub_log
    for package in ("python3-picamera2", "python3-venv", "python3-pip"):
        assert package in log
    useradd = next(line for line in pi.stub_log if line.startswith("useradd "))
    for part in ("--system", "--home-dir /var/lib/veil", "--shell /usr/sbin/nologin", "video"):
        assert part in useradd
    assert any(line.startswith("runuser -u veil -- ") for line in pi.stub_log)
    assert pi.stub_log[-3:] == [
        "systemctl daemon-reload",
        "systemctl enable veil",
        "systemctl restart veil",
    ]


def test_a_second_run_upgrades_in_place_and_keeps_what_the_device_made(pi: Installed) -> None:
    state = pi.root / "var/lib/veil"
    (state / "keys" / TOKEN_NAME).write_text("planted-token\n")
    (state / "keys" / TOKEN_NAME).chmod(0o600)
    segment = state / "recordings" / "2026-01-01T00-00-00.mp4"
    segment.write_bytes(b"planted recording")
    config = pi.root / "etc/veil/veil.toml"
    config.write_text(config.read_text() + "\n# edited by the admin\n")
    kept = {
        path: path.read_bytes()
        for path in (state / "keys" / PRIVATE_NAME, state / "keys" / TOKEN_NAME, segment, config)
    }
    proc = install(PI, pi.root, "--profile", "bodycam", "--no-start")
    assert proc.returncode == 0, proc.stderr
    assert "upgrading in place" in proc.stderr and "keeping" in proc.stderr
    assert {path: path.read_bytes() for path in kept} == kept
    assert mode(state / "keys") == 0o700 and mode(state / "keys" / TOKEN_NAME) == 0o600
    # Both runs' steps are in the log: the --no-start run enabled the unit, restarted nothing.
    log = (pi.root / "install-stub.log").read_text().splitlines()
    assert (log.count("systemctl enable veil"), log.count("systemctl restart veil")) == (2, 1)


def _fake_gpu_wheel(folder: Path) -> Path:
    """A stand-in for NVIDIA's onnxruntime-gpu wheel: only its dist-info."""
    wheel = folder / "onnxruntime_gpu-1.23.0-py3-none-any.whl"
    info = "onnxruntime_gpu-1.23.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: onnxruntime-gpu\n"
                   "Version: 1.23.0\n")  # fmt: skip
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                   "true\nTag: py3-none-any\n")  # fmt: skip
        z.writestr(f"{info}/RECORD", "")
    return wheel


def test_the_jetson_installer_adds_the_gpu_drop_in_and_keeps_nvidias_onnxruntime(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    gpu = _fake_gpu_wheel(tmp_path)
    proc = install(JETSON, root, "--no-start", "--onnxruntime-wheel", str(gpu),
                   VEIL_GLIBC_VERSION="2.35")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    dropin = root / "etc/systemd/system/veil.service.d/jetson.conf"
    assert dropin.read_bytes() == (ROOT / "deploy/veil.service.d/jetson.conf").read_bytes()
    assert (root / "opt/veil/wheels" / gpu.name).is_file()
    site = next((root / "opt/veil/venv/lib").glob("python3*/site-packages"))
    assert list(site.glob("onnxruntime_gpu-*.dist-info"))
    assert not list(site.glob("onnxruntime-*.dist-info"))
    assert not list(site.glob("opencv_python_headless-*.dist-info"))
    assert mode(root / "var/lib/veil/keys") == 0o700
    log = (root / "install-stub.log").read_text()
    assert "python3-picamera2" not in log and "systemctl enable veil" in log
    assert "systemctl restart veil" not in log


@pytest.mark.parametrize("arch", ["armv7l", "armv6l"])
def test_a_32_bit_os_is_refused(tmp_path: Path, arch: str) -> None:
    proc = install(PI, tmp_path, VEIL_UNAME_M=arch)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "veil-install: error: Veil needs the 64-bit OS: there are no 32-bit wheels of numpy, "
        f"OpenCV, onnxruntime or LiteRT (this is {arch})"
    )
    assert not (tmp_path / "install-stub.log").exists()


@pytest.mark.parametrize("script", [PI, JETSON])
def test_glibc_older_than_2_34_is_refused(tmp_path: Path, script: Path) -> None:
    proc = install(script, tmp_path, VEIL_GLIBC_VERSION="2.31")
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1
    assert "glibc 2.31 is older than 2.34" in proc.stderr


def test_an_unknown_profile_is_refused(tmp_path: Path) -> None:
    proc = install(PI, tmp_path, "--profile", "cinema")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "veil-install: error: unknown profile cinema (doorway or bodycam)"


def test_the_installed_key_exports(pi: Installed) -> None:
    proc = veil("audit", "pubkey", "--key-dir", pi.root / "var/lib/veil/keys")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (pi.root / "var/lib/veil/device.pub.pem").read_text()
