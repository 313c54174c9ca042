"""This device's state: the pinned models, the key folder, the recordings disk, the clock, the
board's temperature and power, and the service's sandbox. Nothing here prints a key or a token,
and the only packet ever sent goes to a TEST-NET address, from inside the service."""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import errno
import os
import secrets
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from edge.doctor.base import Context, Result
from edge.errors import VeilError

DEFAULT_OUTPUT = Path("recordings")  # as `veil run`
_TEST_NET = ("192.0.2.1", 9)  # RFC 5737 TEST-NET-1, discard port: never routed anywhere
_HOT_C = 80.0
# `vcgencmd get_throttled` bits: the low ones are now, the same bits << 16 since boot.
_THROTTLE_BITS = (
    (0x1, "under-voltage"),
    (0x2, "ARM frequency capped"),
    (0x4, "throttled"),
    (0x8, "soft temperature limit"),
)
_TIME_ERROR = 5  # adjtimex(2): the kernel's clock is not synchronised


def check_models(context: Context) -> Result:
    """The same verification `veil models verify` does: every file against its pinned SHA-256."""
    from edge.models.fetch import verify

    statuses = verify()
    bad = [s for s in statuses if s.state != "ok"]
    if bad:
        where = bad[0].path.parent
        listed = ", ".join(f"{s.name} {s.state}" for s in bad)
        return Result("models", "fail", f"{listed} (in {where})", "run `veil models fetch`")
    names = ", ".join(s.name for s in statuses)
    folder = statuses[0].path.parent if statuses else "?"
    return Result("models", "ok", f"{len(statuses)} verified ({names}) in {folder}")


def _private_problem(path: Path, what: str) -> Result | None:
    """A fail when `path` could be read by anyone but its owner, or is not this user's."""
    info = path.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Result(
            "keys",
            "fail",
            f"{what} {path} can be read by others (mode {stat.filemode(info.st_mode)})",
            f"run `chmod 600 {path}`",
        )
    if info.st_uid != os.geteuid():
        return Result(
            "keys",
            "fail",
            f"{what} {path} belongs to uid {info.st_uid}, not this user ({os.geteuid()})",
            "run `veil doctor` as the user the service runs as, or chown the key folder to it",
        )
    return None


def check_keys(context: Context) -> Result:
    """The rules `veil run` enforces on the key folder (edge.private_files), checked before a
    run refuses them: a key others can read is no proof, a folder others can write lets them
    swap it."""
    from edge.audit.keys import PRIVATE_NAME, default_key_dir
    from edge.sinks.preview.access import TOKEN_NAME

    folder = context.key_dir or default_key_dir()
    if not folder.exists():
        return Result(
            "keys", "warn", f"no device key yet in {folder} (made on first run)", "none needed"
        )
    if not folder.is_dir():
        return Result(
            "keys", "fail", f"key folder {folder} is not a folder", "pass --key-dir elsewhere"
        )
    mode = folder.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return Result(
            "keys",
            "fail",
            f"key folder {folder} can be written by others (mode {stat.filemode(mode)})",
            f"run `chmod 700 {folder}`",
        )
    key = folder / PRIVATE_NAME
    token = folder / TOKEN_NAME
    for path, what in ((key, "device key"), (token, "preview token")):
        if path.exists() and (problem := _private_problem(path, what)):
            return problem
    found = "preview token 0600" if token.exists() else "no preview token"
    if not key.exists():
        return Result(
            "keys",
            "warn",
            f"no device key yet in {folder} (made on first run); {found}",
            "none needed; `veil audit pubkey` makes it now",
        )
    return Result("keys", "ok", f"device key 0600 in {folder}; {found}")


def _made_folder(folder: Path) -> list[Path]:
    """Make `folder` as `veil run` would; return the folders made, so they can be removed."""
    missing = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def check_recordings(context: Context) -> Result:
    """The folder `veil run` records into: it must be writable, and have room above the
    profile's `[record] min_free_bytes`, below which the oldest segments are deleted."""
    from edge.config import load_config

    folder = context.output_dir or DEFAULT_OUTPUT
    try:
        min_free = load_config(context.config).record.min_free_bytes
    except VeilError as exc:
        return Result("recordings", "fail", f"profile: {exc}", "`veil check-config FILE`")
    try:
        made = _made_folder(folder)
    except OSError as exc:
        return Result(
            "recordings",
            "fail",
            f"{folder} cannot be made: {exc.strerror or type(exc).__name__}",
            "pass --output-dir on a writable disk, or make the folder for the service's user",
        )
    probe = folder / f".veil-doctor-{secrets.token_hex(4)}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return Result(
            "recordings",
            "fail",
            f"{folder} is not writable: {exc.strerror or type(exc).__name__}",
            "give the service's user write access, or pass --output-dir elsewhere",
        )
    finally:
        probe.unlink(missing_ok=True)
        for path in made:  # leave no trace of the check
            path.rmdir()
    gb = free / 1e9
    detail = f"{folder.resolve()} writable, {gb:.1f} GB free"
    if free < min_free:
        return Result(
            "recordings",
            "warn",
            f"{detail}, under [record] min_free_bytes ({min_free / 1e9:.2f} GB)",
            "free space or use a larger disk: runs keep deleting the oldest segments",
        )
    return Result("recordings", "ok", detail + (" (will be made)" if made else ""))


def _timedatectl() -> bool | None:
    if shutil.which("timedatectl") is None:
        return None
    try:
        proc = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = proc.stdout.strip()
    return {"yes": True, "no": False}.get(answer) if proc.returncode == 0 else None


def _adjtimex() -> bool | None:
    """The kernel's own view (what timedated asks too): works under chrony or ntpd, and in a
    container without systemd."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = int(libc.adjtimex(timex))
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state != _TIME_ERROR


def check_clock(context: Context) -> Result:
    """Segment names and log times come from the wall clock; a Pi has no RTC, so before NTP it
    starts at its last shutdown's time (or 1970)."""
    fix = "segment names and log times rely on it: enable systemd-timesyncd or chrony"
    now = dt.datetime.now(dt.timezone.utc)
    if now.year < 2024:
        return Result("clock", "warn", f"the clock says {now:%Y-%m-%d}, before NTP set it", fix)
    synced = _timedatectl()
    how = "timedatectl"
    if synced is None and Path("/run/systemd/timesync/synchronized").exists():
        synced, how = True, "systemd-timesyncd"
    if synced is None:
        synced, how = _adjtimex(), "adjtimex"
    if synced is None:
        return Result("clock", "warn", "cannot tell whether the clock is synchronised", fix)
    if not synced:
        return Result("clock", "warn", f"not synchronised ({how})", fix)
    return Result("clock", "ok", f"synchronised ({how}), {now:%Y-%m-%d %H:%M} UTC")


def check_temperature(context: Context) -> Result:
    from edge.run import cpu_temp_c

    temp = cpu_temp_c(context.thermal_root)
    if temp is None:
        return Result("temperature", "ok", "not reported")
    if temp >= _HOT_C:
        return Result(
            "temperature",
            "warn",
            f"CPU at {temp:.1f} °C: the board slows down near 85 °C and frames are dropped",
            "add a heatsink or fan, and give the case airflow",
        )
    return Result("temperature", "ok", f"CPU at {temp:.1f} °C")


def throttle_meaning(value: int) -> list[str]:
    """The set bits of `get_throttled`, in words."""
    now = [what + " now" for bit, what in _THROTTLE_BITS if value & bit]
    past = [what + " since boot" for bit, what in _THROTTLE_BITS if value & (bit << 16)]
    return now + past


def check_throttling(context: Context) -> Result:
    """A Pi reports power and heat trouble through the firmware; under-voltage in particular
    corrupts SD cards and stalls the camera."""
    if shutil.which("vcgencmd") is None:
        return Result("throttling", "ok", "not reported (no vcgencmd)")
    try:
        proc = subprocess.run(
            ["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5, check=False
        )
        value = int(proc.stdout.strip().partition("=")[2], 16)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return Result(
            "throttling", "warn", "vcgencmd get_throttled gave no answer", "run it by hand"
        )
    meaning = throttle_meaning(value)
    if not meaning:
        return Result("throttling", "ok", f"none (0x{value:x})")
    fixes = []
    if value & 0x10001:
        fixes.append("use the official power supply (5 V 5 A on a Pi 5, 5 V 3 A on a Pi 4)")
    if value & 0xE000E:
        fixes.append("cool the board (heatsink, fan, airflow)")
    return Result("throttling", "warn", f"0x{value:x}: {', '.join(meaning)}", "; ".join(fixes))


def check_sandbox(context: Context) -> Result:
    """The unit denies all IP traffic (IPAddressDeny=any); inside the service, one datagram to
    TEST-NET shows whether that holds. Outside it there is nothing to check, and nothing is
    sent."""
    if not (os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET")):
        return Result(
            "sandbox",
            "ok",
            "not running as the service; the unit applies the sandbox "
            "(`sudo systemctl status veil`)",
        )
    target = f"{_TEST_NET[0]}:{_TEST_NET[1]}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.connect(_TEST_NET)
            sock.send(b"\0")
        except PermissionError:
            return Result("sandbox", "ok", f"network closed (IPAddressDeny): {target} refused")
        except OSError as exc:
            why = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            return Result(
                "sandbox",
                "warn",
                f"running as a service, but a send to {target} failed with {why}, not EPERM: "
                "IPAddressDeny not confirmed",
                "install the unit from deploy/ (it sets IPAddressDeny=any)",
            )
    return Result(
        "sandbox",
        "warn",
        f"the service can reach the network (a datagram to {target} was sent)",
        "install the unit from deploy/ (it sets IPAddressDeny=any), then "
        "`sudo systemctl daemon-reload && sudo systemctl restart veil`",
    )
