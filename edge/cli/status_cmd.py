"""`veil status [FILE]` shows a live run's status file for a person."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from edge.cli.parser import Subparsers
from edge.errors import UsageError

_STALE_S = 5.0  # a running status this old: the run is not writing it any more


def add_parser(subparsers: Subparsers) -> None:
    status = subparsers.add_parser("status")
    status.add_argument(
        "file", type=Path, nargs="?", default=Path("recordings/status.json"), help="status.json"
    )
    status.add_argument("--json", action="store_true", help="print the raw JSON")


def main(args: argparse.Namespace) -> int:
    return status_command(args.file, as_json=args.json)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number Veil writes")


def _number(value: Any) -> float | None:
    """A finite number, or None for anything else (a file edited by hand, or by someone else)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        # Python's json reads NaN and Infinity, which JSON does not have and Veil never writes.
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except FileNotFoundError:
        raise UsageError(f"no status file at {path} (is `veil run` writing elsewhere?)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable status file ({exc})") from None
    if not isinstance(data, dict) or "state" not in data:
        raise UsageError(f"{path}: not a Veil status file")
    return data


def _age_s(data: dict[str, Any]) -> float | None:
    try:
        when = dt.datetime.strptime(str(data.get("updated_utc")), "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return (now - when).total_seconds()


def _ms(pair: Any) -> str:
    if not isinstance(pair, dict) or pair.get("p50") is None:
        return "-"
    return f"p50 {pair['p50']} ms, p99 {pair['p99']} ms"


def status_command(path: Path, *, as_json: bool = False) -> int:
    data = _load(path)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    state = str(data["state"])
    age = _age_s(data)
    if state != "stopped" and age is not None and age > _STALE_S:
        state += f" (NOT UPDATED for {age:.0f} s: the run may have died)"
    free = _number(data.get("disk_free_bytes"))
    temp = _number(data.get("cpu_temp_c"))
    link = "connected" if data.get("source_connected") else "LOST"
    failed = data.get("fail_closed")
    causes = sorted(failed.items()) if isinstance(failed, dict) else []
    full = " (DISK FULL: recording paused)" if data.get("storage_full") else ""
    opened = " closed, 1 being recorded" if data.get("segment_open") else ""
    rows = [
        ("state", state),
        ("source", f"{data.get('source')} ({link}, lost {data.get('source_losses', 0)}x)"),
        ("since", f"{data.get('started_utc')} ({data.get('uptime_s')} s)"),
        (
            "frames",
            f"{data.get('frames_in')} in, {data.get('frames_out')} recorded, "
            f"{data.get('dropped')} dropped, {data.get('obscured')} fully obscured",
        ),
        ("fail-closed", ", ".join(f"{k} x{v}" for k, v in causes) or "none"),
        ("latency", _ms(data.get("latency_ms"))),
        ("detector", _ms(data.get("detect_ms"))),
        ("camera", f"{data.get('camera_fps')} frames/s"),
        ("segments", f"{data.get('segments')}{opened}{full}"),
        ("disk free", "-" if free is None else f"{free / 1e9:.2f} GB"),
        ("cpu temp", "-" if temp is None else f"{temp} °C"),
    ]
    for name, counts in sorted((data.get("outputs") or {}).items()):
        if isinstance(counts, dict):
            rows.append((name, ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))))
    if data.get("warning"):
        rows.insert(1, ("WARNING", str(data["warning"])))
    because = data.get("degraded_because")
    for cause in reversed(because if isinstance(because, list) else []):
        rows.insert(1, ("because", str(cause)))
    for name, value in rows:
        print(f"{name:<12} {value}")
    return 0
