"""A command run on a slice of one CPU: pinned to one core and held to a share of it by a cgroup
CPU quota (v1 `cpu.cfs_quota_us`, or v2 `cpu.max`), as ../shared/tools/pi5-standin does, for
the tests of a device too slow for its profile. Needs root and a cgroup CPU controller: without
them the test is skipped, or fails under CI=true."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")
_PERIOD_US = 20_000  # short, so that throttling adds little jitter
_SERIAL = itertools.count()  # each group's own name within this process


def _unavailable(reason: str) -> None:
    reason = f"cannot limit a command's CPU: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _make(name: str, quota: int) -> Path:
    """A new cgroup with the quota set; skips (fails on CI) where none can be made."""
    try:
        if _V1.is_dir() and os.access(_V1, os.W_OK):
            group = _V1 / name
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(f"{_PERIOD_US}\n")
            (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
            return group
        controllers = _V2 / "cgroup.controllers"
        if controllers.is_file() and "cpu" in controllers.read_text().split():
            subtree = _V2 / "cgroup.subtree_control"
            if "cpu" not in subtree.read_text().split():
                subtree.write_text("+cpu\n")
            group = _V2 / name
            group.mkdir()
            (group / "cpu.max").write_text(f"{quota} {_PERIOD_US}\n")
            return group
    except OSError as exc:
        _unavailable(f"{exc} (needs root)")
    _unavailable("no cgroup CPU controller here")
    raise AssertionError("unreachable")


def _remove(group: Path) -> None:
    """Move anything left in `group` out of it, then remove it."""
    parent = group.parent / "cgroup.procs"
    try:
        left = (group / "cgroup.procs").read_text().split()
    except OSError:
        left = []
    for pid in left:
        try:
            parent.write_text(f"{pid}\n")
        except OSError:
            pass  # it ended meanwhile
    try:
        group.rmdir()
    except OSError:
        pass


@contextmanager
def cpu_slice(share: float) -> Iterator[tuple[Path, int]]:
    """A cgroup held to `share` of one CPU, and the CPU to pin to (the highest this process may
    use: CPU 0 is the one other work is most likely to be timed on)."""
    cpu = max(os.sched_getaffinity(0))
    group = _make(f"veil-test-{os.getpid()}-{next(_SERIAL)}", max(1000, round(share * _PERIOD_US)))
    try:
        yield group, cpu
    finally:
        _remove(group)


@contextmanager
def spawned_on_slice(share: float, *args: str | Path) -> Iterator[subprocess.Popen[str]]:
    """`veil ARGS` started in a child process on `share` of one CPU; killed if still running
    when the block ends."""
    with cpu_slice(share) as (group, cpu):
        procs = group / "cgroup.procs"

        def enter() -> None:  # in the child, before it runs Python: nothing escapes the quota
            procs.write_text(f"{os.getpid()}\n")
            os.sched_setaffinity(0, {cpu})

        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=enter,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
