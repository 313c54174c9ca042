"""The libraries Veil runs on: which OpenCV, onnxruntime and LiteRT are loaded, the C library
under them, the Pi camera library, and onnxruntime's telemetry kept off. Each is imported here,
inside its check, so a missing or broken one is a line of the report rather than an ImportError."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import re
import shlex
import struct
from pathlib import Path
from types import ModuleType

from edge import telemetry
from edge.doctor.base import Context, Level, Result, worst

_GSTREAMER = re.compile(r"^\s*GStreamer:\s*(\S+)", re.MULTILINE)
_ARM32 = ("armv6l", "armv7l", "armv8l", "arm")
# Built against glibc 2.34 symbols although tagged manylinux_2_27, so pip installs them on an
# older system and they fail only at import.
_GLIBC_MIN = (2, 34)


def _import(name: str) -> tuple[ModuleType | None, str]:
    """The module, or None with why not (a wheel for another glibc fails here with OSError)."""
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # any import failure is a finding, not a crash
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, f"{type(exc).__name__}: {first}"[:200]


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def check_opencv(context: Context) -> Result:
    """The loaded cv2 (a second OpenCV on the path is a common surprise), whether it can read
    GStreamer pipelines, and whether it carries face recognition Veil must never use."""
    cv2, why = _import("cv2")
    if cv2 is None:
        return Result(
            "opencv", "fail", f"cannot import cv2 ({why})", "pip install opencv-python-headless"
        )
    where = Path(str(getattr(cv2, "__file__", "?"))).parent
    found = _GSTREAMER.search(str(cv2.getBuildInformation()))
    gstreamer = bool(found and found.group(1).upper().startswith("YES"))
    details = [f"{cv2.__version__} ({where})", "GStreamer" if gstreamer else "no GStreamer"]
    fixes = []
    levels: list[Level] = ["ok"]
    if not gstreamer:
        levels.append("warn")
        fixes.append(
            "GStreamer: only Jetson CSI cameras and gst: sources need it; for those, use an "
            "OpenCV built with it (JetPack's, or python3-opencv) in a --system-site-packages venv"
        )
    # Names kept as strings: Veil's code never names these APIs (tests/test_architecture.py).
    if hasattr(cv2, "face"):
        levels.append("warn")
        details.append("opencv-contrib build: ships face recognition (cv2.face)")
        fixes.append(
            "cv2.face: Veil never uses it; `pip uninstall opencv-contrib-python` and "
            "`pip install opencv-python-headless`"
        )
    if hasattr(cv2, "FaceRecognizerSF"):
        levels.append("warn")
        details.append("ships face recognition (FaceRecognizerSF)")
        fixes.append(
            "FaceRecognizerSF: nothing to do: every stock OpenCV wheel since 4.5.4 has it, "
            "headless too, and Veil never calls it (tests/test_architecture.py)"
        )
    return Result("opencv", worst(*levels), ", ".join(details), " | ".join(fixes))


def check_onnxruntime(context: Context) -> Result:
    """onnxruntime runs CenterFace; its providers show which wheel is installed (a Jetson wheel
    brings CUDA and TensorRT)."""
    ort, why = _import("onnxruntime")
    if ort is None:
        return Result(
            "onnxruntime",
            "fail",
            f"cannot import onnxruntime ({why}); CenterFace needs it",
            "pip install onnxruntime (on a Jetson, NVIDIA's onnxruntime-gpu wheel for JetPack)",
        )
    providers = [str(p) for p in ort.get_available_providers()]
    detail = f"{ort.__version__}, providers: {', '.join(providers)}"
    gpu = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")]
    if gpu:
        detail += f" (GPU wheel: {', '.join(p.removesuffix('ExecutionProvider') for p in gpu)})"
    return Result("onnxruntime", "ok", detail)


def check_litert(context: Context) -> Result:
    """LiteRT runs BlazeFace; its aarch64 wheel installs on systems it cannot load on."""
    module, why = _import("ai_edge_litert.interpreter")
    if module is None:
        return Result(
            "litert",
            "fail",
            f"cannot import ai_edge_litert.interpreter ({why}); BlazeFace needs it",
            "pip install ai-edge-litert (on aarch64 it needs glibc >= 2.34: see the glibc line)",
        )
    return Result("litert", "ok", f"ai-edge-litert {_dist_version('ai-edge-litert')}")


def glibc_result(machine: str, version: str | None, pointer_bits: int) -> Result:
    """The verdict for one platform, apart from the probing so that other platforms can be
    judged (and tested) here: 32-bit ARM has no wheels at all, and aarch64 wheels of LiteRT and
    c2pa-python need a newer glibc than their tags promise."""
    if machine.lower() in _ARM32 or (machine.lower() == "aarch64" and pointer_bits == 32):
        return Result(
            "glibc",
            "fail",
            f"{version or 'glibc ?'} on 32-bit ARM ({machine}, {pointer_bits}-bit Python)",
            "Veil needs a 64-bit OS: there are no 32-bit wheels of numpy, OpenCV, onnxruntime "
            "or LiteRT (install the 64-bit Raspberry Pi OS)",
        )
    if not version or not version.startswith("glibc "):
        return Result(
            "glibc",
            "warn",
            f"not glibc ({version or 'unknown C library'}) on {machine}",
            "the manylinux wheels Veil installs need glibc; use a glibc distribution",
        )
    numbers = re.match(r"(\d+)\.(\d+)", version.split()[1])
    found = (int(numbers.group(1)), int(numbers.group(2))) if numbers else (0, 0)
    if machine.lower() == "aarch64" and found < _GLIBC_MIN:
        return Result(
            "glibc",
            "fail",
            f"{version} on aarch64: ai-edge-litert 2.3 and c2pa-python need glibc >= 2.34, "
            "though their wheels are tagged manylinux_2_27 (pip installs them, import fails)",
            "upgrade the OS: Raspberry Pi OS Bookworm (glibc 2.36) rather than Bullseye, "
            "JetPack 6 (Ubuntu 22.04, glibc 2.35) rather than JetPack 5",
        )
    return Result("glibc", "ok", f"{version} on {machine}")


def check_glibc(context: Context) -> Result:
    try:
        version: str | None = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        version = None
    return glibc_result(platform.machine(), version, struct.calcsize("P") * 8)


def check_picamera2(context: Context) -> Result:
    """The Pi camera library comes from apt, not pip, so a venv sees it only when made with
    --system-site-packages; then libcamera must list at least one camera."""
    module, why = _import("picamera2")
    if module is None:
        return Result(
            "picamera2",
            "warn",
            f"not importable ({why}); only the picamera2 source (a Pi camera) needs it",
            "on a Pi: `sudo apt install python3-picamera2`, and make the venv with "
            "`python3 -m venv --system-site-packages`",
        )
    cameras = list(module.Picamera2.global_camera_info())
    if not cameras:
        return Result(
            "picamera2",
            "warn",
            "camera not found (libcamera lists none)",
            "check the ribbon cable (contacts, latch, the right connector) and "
            "`rpicam-hello --list-cameras`",
        )
    models = ", ".join(str(c.get("Model", "?")) for c in cameras)
    return Result("picamera2", "ok", f"{len(cameras)} camera(s): {models}")


def check_telemetry(context: Context) -> Result:
    """onnxruntime's telemetry (edge/telemetry.py): off in Veil's processes, and no device id
    left by an earlier run of an older Veil or by another program that uses onnxruntime. Runs
    after the onnxruntime check, so its import would have written one if the switch failed."""
    if not telemetry.is_off():
        return Result(
            "telemetry",
            "fail",
            "onnxruntime's telemetry started in this process (onnxruntime was imported before "
            f"Veil, or {telemetry.ORT_SWITCH} is not 1)",
            "run Veil as `veil`; a program that uses Veil's code must import it before "
            f"onnxruntime, or set {telemetry.ORT_SWITCH}=1 in its environment",
        )
    found = telemetry.leftovers()
    if found:
        where = ", ".join(str(p) for p in found)
        return Result(
            "telemetry",
            "warn",
            f"onnxruntime telemetry off, but a device id from an earlier run is at {where} "
            "(an older Veil, or another program using onnxruntime with telemetry on)",
            f"delete it: rm -r {' '.join(shlex.quote(str(p)) for p in found)}; a program "
            f"that uses onnxruntime writes it again unless {telemetry.ORT_SWITCH}=1 is set",
        )
    return Result(
        "telemetry", "ok", f"onnxruntime telemetry off ({telemetry.ORT_SWITCH}=1), no device id"
    )
