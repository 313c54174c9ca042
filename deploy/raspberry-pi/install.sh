#!/usr/bin/env bash
# Installs Veil as a service on a Raspberry Pi 4 or 5 running Raspberry Pi OS Bookworm 64-bit.
#
#   sudo deploy/raspberry-pi/install.sh [--profile doorway|bodycam] [--no-start]
#   sudo deploy/raspberry-pi/install.sh --wheel veil_edge-0.1.0-py3-none-any.whl
#   sudo deploy/raspberry-pi/install.sh --wheel-dir /media/usb/veil-wheels   # offline
#
# Run it again to upgrade in place: the device key, the preview token, /etc/veil/veil.toml and
# the recordings are kept. What it does, in order: apt (picamera2 comes from Raspberry Pi's apt
# repository, built against its libcamera; pip has no working build of it), the system user
# veil (groups video and render), /opt/veil/venv made with --system-site-packages so that apt's
# picamera2 is importable, Veil into it with pip, the models into /opt/veil/models, the device
# key, the config from a profile if absent (checked with `veil check-config`), and the unit.
#
# numpy stays below 2 (PIP_CONSTRAINTS): picamera2's compiled helpers from apt (simplejpeg among
# them) are built against Bookworm's numpy 1.24, which a numpy 2 in the venv would shadow and
# break at import. pip then keeps apt's numpy and picks opencv-python-headless 4.11, the last
# release that accepts numpy 1.x.
#
# An offline Pi: make the wheel folder on any machine with pip and a network, copy it over:
#   deploy/prepare-wheels.sh --python 3.11 DIR
# Test hooks (VEIL_ROOT, VEIL_INSTALL_STUB=1, VEIL_UNAME_M, VEIL_GLIBC_VERSION, VEIL_PYTHON):
# see deploy/lib/install-common.sh.
set -euo pipefail

BOARD=raspberry-pi
BOARD_USAGE=""
APT_PACKAGES=(python3-picamera2 python3-venv python3-pip ca-certificates)
PIP_CONSTRAINTS=("numpy<2")
# shellcheck source=deploy/lib/install-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/install-common.sh"

parse_args "$@"
check_platform
install_apt_packages
make_user
make_dirs
make_venv
pip_install
"$VENV/bin/python" -c 'import picamera2' 2>/dev/null ||
    say "warning: picamera2 is not importable from $VENV (a USB or RTSP camera still works)"
fetch_models
make_key
install_config
install_unit
install_wrapper
enable_service
