"""Turns a run's events into audit records: start, periodic summaries, files, stop.

The trail sees counts and the published outputs' hashes; it never sees a frame or a box. Every
summary holds the counts since the previous one, so a run's summaries add up to its `run_stop`,
which the verifier checks.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge import __version__
from edge.audit.log import AuditLog
from edge.audit.records import COUNTS, Status
from edge.config import Config
from edge.detect import model_names
from edge.digest import sha256_bytes
from edge.models.manifest import load_manifest
from edge.pipeline import RunReport
from edge.sinks.base import Published


def flat_settings(cfg: Config) -> dict[str, str | int | float | bool]:
    """Every setting as `section.key = scalar`; a tuple becomes a comma-joined string."""
    out: dict[str, str | int | float | bool] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, (list, tuple)):
            out[prefix] = ",".join(str(v) for v in value)
        else:
            out[prefix] = value

    walk("", cfg.model_dump())
    return out


@dataclass
class _Seen:
    """How much of one report is already in summaries."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    failures: Counter[str] = field(default_factory=Counter)
    detect_count: int = 0


class AuditTrail:
    def __init__(self, log: AuditLog, cfg: Config) -> None:
        self.log = log
        self.run = secrets.token_hex(16)
        self._cfg = cfg
        self._period = cfg.audit.summary_seconds
        self._last = time.monotonic()
        self._report: RunReport | None = None
        self._seen = _Seen()
        self.totals: Counter[str] = Counter()
        self.files = 0

    def _append(self, type_: str, **body: Any) -> int:
        return self.log.append({"type": type_, "run": self.run, **body})

    def start(self, source: Literal["files", "camera"]) -> None:
        manifest = load_manifest()
        key = self.log.key
        tail = self.log.tail
        torn = tail.torn
        self._append(
            "run_start",
            veil_version=__version__,
            device=key.device_id,
            key_id=key.key_id,
            pubkey=key.public_b64,
            source=source,
            config_sha256=self._cfg.sha256(),
            settings=flat_settings(self._cfg),
            models=[
                {"name": name, "sha256": manifest.get(name).sha256}
                for name in model_names(self._cfg.detector)
            ],
            torn_bytes=len(torn),
            torn_sha256=sha256_bytes(torn) if torn else None,
            unclosed_run=tail.unclosed_run,
        )
        self.log.sync()

    def observe(self, report: RunReport) -> None:
        """Called once per frame: writes a summary when one is due."""
        now = time.monotonic()
        if report is not self._report:
            self._report, self._seen = report, _Seen()
        failed_anew = report.obscured > self._seen.counts["obscured"]
        if now - self._last >= self._period or (failed_anew and now - self._last >= 1.0):
            self.summary(report)

    def summary(self, report: RunReport, *, if_new: bool = False) -> None:
        """The counts of `report` since its last summary (skipped if `if_new` and none)."""
        if report is not self._report:
            self._report, self._seen = report, _Seen()
        seen = self._seen
        now = {name: int(getattr(report, name)) for name in COUNTS}
        delta = {name: now[name] - seen.counts[name] for name in COUNTS}
        failures = report.failures - seen.failures
        if if_new and not any(delta.values()) and not failures:
            return
        timings = report.recent_detect_ms(seen.detect_count)
        p50, p99 = (
            (float(np.percentile(timings, 50)), float(np.percentile(timings, 99)))
            if timings
            else (None, None)
        )
        self._append(
            "summary",
            **delta,
            detect_ms_p50=None if p50 is None else round(p50, 3),
            detect_ms_p99=None if p99 is None else round(p99, 3),
            fail_closed=dict(failures),
        )
        self.totals.update(delta)
        seen.counts = now
        seen.failures = Counter(report.failures)
        seen.detect_count = report.detect_count
        self._last = time.monotonic()

    def file_closed(
        self, report: RunReport, out: Published, kind: str, source_sha256: str | None
    ) -> None:
        self.summary(report, if_new=True)
        self._append(
            "file_closed",
            name=self.name(out.path),
            kind=kind,
            size=out.size,
            sha256=out.sha256,
            frames=out.frames,
            first_ts=out.first_ts,
            last_ts=out.last_ts,
            source_sha256=source_sha256,
            c2pa=self._cfg.audit.c2pa,
        )
        self.files += 1
        self.log.sync()

    def file_discarded(
        self, report: RunReport, path: Path, interrupted: bool, error: BaseException | None
    ) -> None:
        self.summary(report, if_new=True)
        self._append(
            "file_discarded",
            name=self.name(path),
            frames=report.frames_out,
            reason="interrupted" if interrupted else "error",
            error=None if error is None else type(error).__name__,
        )
        self.log.sync()

    def file_deleted(self, path: Path, sha256: str, reason: str) -> None:
        """A logged file removed on purpose (retention): the verifier then expects it gone."""
        self._append("file_deleted", name=self.name(path), sha256=sha256, reason=reason)
        self.log.sync()

    def stop(self, status: Status, error: BaseException | None = None) -> None:
        self._append(
            "run_stop",
            status=status,
            **{name: self.totals[name] for name in COUNTS},
            files=self.files,
            error=None if error is None else type(error).__name__,
        )
        self.log.sync()

    def name(self, path: Path) -> str:
        """A file's name in the log: relative to the log's folder, so they can move together."""
        return Path(os.path.relpath(path.resolve(), self.log.path.parent.resolve())).as_posix()
