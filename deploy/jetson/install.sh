#!/usr/bin/env bash
# Installs Veil as a service on an NVIDIA Jetson (Orin) with JetPack 6: Ubuntu 22.04, Python 3.10.
#
#   sudo deploy/jetson/install.sh [--profile doorway|bodycam] [--no-start]
#   sudo deploy/jetson/install.sh --onnxruntime-wheel onnxruntime_gpu-1.23.0-cp310-cp310-linux_aarch64.whl
#   sudo deploy/jetson/install.sh --wheel-dir /media/usb/veil-wheels   # offline
#
# The same user, paths and unit as deploy/raspberry-pi/install.sh (see deploy/lib), plus the
# drop-in deploy/veil.service.d/jetson.conf that lets the unit open the GPU's devices. Run it
# again to upgrade in place: the key, the token, the config and the recordings are kept.
#
# OpenCV: JetPack's own (apt, built with GStreamer for nvarguscamerasrc and the hardware codecs)
# must be the one Veil imports. The venv is made with --system-site-packages, and pip's
# opencv-python-headless, which veil-edge depends on and which would shadow JetPack's, is
# uninstalled from the venv after every pip install. Why this and not an optional dependency:
# veil-edge keeps one plain install everywhere else (`pip install veil-edge`, CI's
# `pip install -e '.[test]'`, the README's demo), where OpenCV must simply be there; only this
# script knows that a system OpenCV is meant to win. `pip check` in the venv then names
# opencv-python-headless as missing: that is expected here.
#
# onnxruntime: pip's CPU wheel by default. NVIDIA publishes onnxruntime-gpu wheels for JetPack 6
# (CUDA and TensorRT providers) on its Jetson AI Lab index, as NVIDIA documents (not verified
# here): `pip download onnxruntime-gpu --index-url https://pypi.jetson-ai-lab.dev/jp6/cu126`, or
# the Jetson Zoo. Give that file with --onnxruntime-wheel: it is kept in /opt/veil/wheels and
# put back after every pip install, because onnxruntime-gpu does not satisfy veil-edge's
# `onnxruntime` requirement and pip would otherwise lay the CPU wheel over the same files.
# Then set [detector.centerface] providers = ["CUDAExecutionProvider", "CPUExecutionProvider"].
#
# Python 3.10 on aarch64, with the numpy<2 pin below, pip resolves (checked with
# `pip install --dry-run --python-version 3.10 --platform manylinux_2_27_aarch64 ...`):
# numpy 1.26.4, onnxruntime 1.23.2 (the last release with cp310 wheels), ai-edge-litert 2.3.0,
# av 17.1.0, onnx 1.23.2, opencv-python-headless 4.11.0.86 (removed again, see above). numpy
# stays below 2 because JetPack's cv2 is built against Ubuntu's numpy 1.21 and fails to import
# under numpy 2; Ubuntu's 1.21 is too old for veil-edge, so pip puts numpy 1.26 in the venv.
#
# Test hooks (VEIL_ROOT, VEIL_INSTALL_STUB=1, VEIL_UNAME_M, VEIL_GLIBC_VERSION, VEIL_PYTHON):
# see deploy/lib/install-common.sh.
set -euo pipefail

BOARD=jetson
BOARD_USAGE=" [--onnxruntime-wheel FILE]

  --onnxruntime-wheel FILE  NVIDIA's onnxruntime-gpu wheel for this JetPack, kept in place of
                            pip's CPU onnxruntime (kept for later runs in /opt/veil/wheels)"
APT_PACKAGES=(python3-venv python3-pip ca-certificates)
PIP_CONSTRAINTS=("numpy>=1.24,<2" "onnxruntime>=1.16")
# shellcheck source=deploy/lib/install-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/install-common.sh"

KEPT_WHEELS="$ROOT/opt/veil/wheels"

system_opencv() {
    if "$PYTHON" -c 'import cv2' 2>/dev/null; then
        return
    fi
    # JetPack's OpenCV with its Python bindings, as NVIDIA packages it for JetPack 6.
    say "JetPack's OpenCV is not importable by $PYTHON: apt-get install nvidia-opencv"
    system env DEBIAN_FRONTEND=noninteractive apt-get install -y nvidia-opencv ||
        die "apt-get install nvidia-opencv failed: is this JetPack 6 (sudo apt install nvidia-jetpack)?"
}

keep_system_opencv() {
    local dist where
    for dist in opencv-python-headless opencv-python opencv-contrib-python; do
        if pip_has "$dist"; then
            "$VENV/bin/python" -m pip uninstall -y --disable-pip-version-check "$dist" >/dev/null ||
                die "cannot remove $dist from $VENV"
        fi
    done
    where="$("$VENV/bin/python" -c 'import cv2; print(cv2.__file__)' 2>/dev/null)" ||
        die "the venv cannot import JetPack's cv2 (python3 -c 'import cv2' outside it works?)"
    case "$where" in
        "$VENV"/*) die "cv2 still comes from the venv ($where), not from JetPack" ;;
    esac
    say "OpenCV: $where"
    "$VENV/bin/python" -c 'import cv2, re, sys
sys.exit(not re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()))' ||
        say "warning: this OpenCV has no GStreamer: gst:// and CSI cameras will not open"
}

keep_gpu_onnxruntime() {
    local wheel=""
    if [ -n "$ORT_WHEEL" ]; then
        install -d -m 0755 "$KEPT_WHEELS"
        find "$KEPT_WHEELS" -maxdepth 1 -name 'onnxruntime*.whl' -delete
        install -m 0644 "$ORT_WHEEL" "$KEPT_WHEELS/"
        wheel="$KEPT_WHEELS/$(basename "$ORT_WHEEL")"
    elif [ -d "$KEPT_WHEELS" ]; then
        wheel="$(find "$KEPT_WHEELS" -maxdepth 1 -name 'onnxruntime*.whl' | sort -V | tail -n 1)"
    fi
    if [ -z "$wheel" ]; then
        say "onnxruntime: pip's CPU wheel (--onnxruntime-wheel for NVIDIA's GPU build)"
        return
    fi
    # The CPU wheel pip just installed shares the onnxruntime/ folder: out first, then the GPU one.
    if pip_has onnxruntime; then
        "$VENV/bin/python" -m pip uninstall -y --disable-pip-version-check onnxruntime >/dev/null ||
            die "cannot remove the CPU onnxruntime from $VENV"
    fi
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps --force-reinstall \
        "$wheel" >/dev/null || die "cannot install $wheel"
    say "onnxruntime: $(basename "$wheel"), providers" \
        "$("$VENV/bin/python" -c 'import onnxruntime as o; print(o.get_available_providers())')"
}

install_dropin() {
    install -D -m 0644 "$SRC/deploy/veil.service.d/jetson.conf" \
        "$UNIT_DIR/veil.service.d/jetson.conf"
}

parse_args "$@"
check_platform
[ -f "$ROOT/etc/nv_tegra_release" ] || [ "$STUB" = 1 ] ||
    say "warning: no /etc/nv_tegra_release: this does not look like JetPack"
install_apt_packages
system_opencv
make_user
make_dirs
make_venv
pip_install
keep_system_opencv
keep_gpu_onnxruntime
fetch_models
make_key
install_config
install_unit
install_dropin
install_wrapper
enable_service
