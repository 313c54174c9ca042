#!/usr/bin/env bash
# The Debian packages the tests need beyond the venv: GStreamer's RTSP server, driven from the
# system python3 through PyGObject (tests/servers/rtsp_server.py), with the elements its pipeline
# uses; and Chromium, which Playwright drives headless to render the preview page (Playwright's
# own browser download is never used: it needs a network the tests do not have); and strace, which
# shows that no run makes a network call (no telemetry). Idempotent: when every package is already
# installed, apt is not touched at all, so running it before every test run costs a fraction of a
# second.
#
#   bash tests/system-packages.sh        (as root, or as a user with sudo)
set -euo pipefail

# What each package is for, so that a trimmed list can be checked against the server's pipeline.
packages=(
  python3-gi                  # PyGObject for /usr/bin/python3 (the venv's python has no gi)
  gir1.2-gst-rtsp-server-1.0  # GstRtspServer typelib; pulls libgstrtspserver and Gst typelibs
  gstreamer1.0-plugins-base   # appsrc, videoconvert
  gstreamer1.0-plugins-good   # rtph264pay, rtpbin (the RTSP server's session manager)
  gstreamer1.0-plugins-ugly   # x264enc
  chromium                    # the preview page in a real browser (tests/system/test_preview_browser.py)
  fonts-dejavu-core           # text for Chromium's screenshots
  systemd                     # systemd-analyze: verify and score deploy/veil.service
  strace                      # every network call of a real run (tests/system/test_telemetry.py)
)

missing=()
for pkg in "${packages[@]}"; do
  # "install ok installed" only: a removed package leaves "deinstall ok config-files" behind.
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "system-packages: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "system-packages: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
