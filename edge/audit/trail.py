"""Turns a run's events into audit records: start, periodic summaries, files, stop.

The trail sees counts and the published outputs' hashes; it never sees a frame or a box. Every
summary holds the counts since the previous one, so a run's summaries add up to its `run_stop`,
which the verifier checks.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from edge import __version__
from edge.audit.log import AuditLog
from edge.audit.records import COUNTS, Output, Status
from edge.audit.settings import config_sha256, flat_settings
from edge.config import Config
from edge.detect import FaceDetector, fallback_warning, pinned_models, providers_of
from edge.digest import sha256_bytes
from edge.run import RunReport
from edge.sinks.base import Discard, Published

if TYPE_CHECKING:
    from edge.run.pace import Choice, Pace


@dataclass
class _Seen:
    """How much of one report is already in summaries."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    failures: Counter[str] = field(default_factory=Counter)
    detect_count: int = 0
    latency_count: int = 0


def _percentiles(timings: list[float]) -> tuple[float | None, float | None]:
    if not timings:
        return None, None
    return round(float(np.percentile(timings, 50)), 3), round(float(np.percentile(timings, 99)), 3)


@dataclass
class Outcome:
    status: Status = "error"  # until the run's body says otherwise
    error: BaseException | None = None


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
        # Live runs report from several threads; each record's counts must be taken whole.
        self._lock = threading.RLock()

    def _append(self, type_: str, **body: Any) -> int:
        return self.log.append({"type": type_, "run": self.run, **body})

    def start(self, source: Literal["files", "camera"], source_kind: str | None = None) -> None:
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
            **({"source_kind": source_kind} if source_kind is not None else {}),
            config_sha256=config_sha256(self._cfg),
            settings=flat_settings(self._cfg),
            models=pinned_models(self._cfg.detector),
            torn_bytes=len(torn),
            torn_sha256=sha256_bytes(torn) if torn else None,
            unclosed_run=tail.unclosed_run,
        )
        self.log.sync()

    def detector_ready(self, detector: FaceDetector) -> None:
        """Once per detector built: the execution provider it runs on and any fallback."""
        provider, fallback = providers_of(detector)
        with self._lock:
            self._append(
                "detector_ready", detector=detector.name, provider=provider, fallback=fallback
            )

    def schedule(self, pace: Pace, choice: Choice) -> None:
        """What a live run chose to keep up, at start and at each change (`edge.run.pace`)."""
        costs = pace.costs
        with self._lock:
            self._append(
                "schedule",
                fps=round(choice.fps, 3),
                source_fps=float(pace.source_fps),
                sweep=choice.sweep,
                whole_every=pace.whole_every,
                order=pace.order,
                reason=choice.reason,
                keeps_up=choice.keeps_up,
                whole_ms=round(costs.whole_ms, 2) if costs else None,
                fine_ms=round(costs.fine_ms, 2) if costs else None,
            )

    def observe(self, report: RunReport) -> None:
        """Called once per frame (and, live, once a second): writes a summary when one is due."""
        with self._lock:
            now = time.monotonic()
            if report is not self._report:
                self._report, self._seen = report, _Seen()
            seen = self._seen.counts
            failed_anew = report.obscured > seen["obscured"] or report.dropped > seen["dropped"]
            if now - self._last >= self._period or (failed_anew and now - self._last >= 1.0):
                self._summary(report, False)

    def summary(self, report: RunReport, *, if_new: bool = False) -> None:
        """The counts of `report` since its last summary (skipped if `if_new` and none)."""
        with self._lock:
            self._summary(report, if_new)

    def _summary(self, report: RunReport, if_new: bool) -> None:
        if report is not self._report:
            self._report, self._seen = report, _Seen()
        seen = self._seen
        # One snapshot, taken whole: other threads drop frames meanwhile, and a summary's
        # causes must add up to its dropped and obscured counts (the verifier checks).
        now, causes = report.tally()
        delta = {name: now[name] - seen.counts[name] for name in COUNTS}
        failures = causes - seen.failures
        if if_new and not any(delta.values()) and not failures:
            return
        p50, p99 = _percentiles(report.detect.since(seen.detect_count))
        latency = report.latency.since(seen.latency_count)
        lat50, lat99 = _percentiles(latency)
        self._append(
            "summary",
            **delta,
            detect_ms_p50=p50,
            detect_ms_p99=p99,
            fail_closed=dict(failures),
            **({"latency_ms_p50": lat50, "latency_ms_p99": lat99} if latency else {}),
        )
        self.totals.update(delta)
        seen.counts = now
        seen.failures = causes
        seen.detect_count = report.detect.count
        seen.latency_count = report.latency.count
        self._last = time.monotonic()

    def file_closed(
        self,
        report: RunReport | None,
        out: Published,
        kind: str,
        source_sha256: str | None,
        *,
        recovered: bool = False,
    ) -> None:
        with self._lock:
            if report is not None:
                self._summary(report, True)
            self._file_closed(out, kind, source_sha256, recovered)

    def _file_closed(
        self, out: Published, kind: str, source_sha256: str | None, recovered: bool
    ) -> None:
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
            **({"recovered": True} if recovered else {}),
        )
        self.files += 1
        self.log.sync()

    def file_discarded(
        self, report: RunReport, path: Path, interrupted: bool, error: BaseException | None
    ) -> None:
        with self._lock:
            self._summary(report, True)
            self.discarded(
                path, report.frames_out, "interrupted" if interrupted else "error", error
            )

    def discarded(
        self,
        path: Path,
        frames: int,
        reason: Discard,
        error: BaseException | None,
    ) -> None:
        self._append(
            "file_discarded",
            name=self.name(path),
            frames=frames,
            reason=reason,
            error=None if error is None else type(error).__name__,
        )
        self.log.sync()

    def file_deleted(self, path: Path, sha256: str, reason: str) -> None:
        """A logged file removed on purpose (retention): the verifier then expects it gone."""
        self._append("file_deleted", name=self.name(path), sha256=sha256, reason=reason)
        self.log.sync()

    def source_lost(self, kind: str, reason: str) -> None:
        self._append("source_lost", source_kind=kind, reason=reason)
        self.log.sync()

    def source_restored(self, kind: str, offline_s: float, attempts: int) -> None:
        self._append(
            "source_restored",
            source_kind=kind,
            offline_s=round(max(0.0, offline_s), 3),
            attempts=attempts,
        )

    def storage(self, event: Literal["full", "resumed"], free_bytes: int) -> None:
        self._append("storage", event=event, free_bytes=max(0, free_bytes))
        self.log.sync()

    def output_start(
        self, output: Output, bound: str, protocol: str, *, token: bool = False
    ) -> None:
        self._append("output_start", output=output, bound=bound, protocol=protocol, token=token)
        self.log.sync()

    def output_lost(self, output: Output, reason: str) -> None:
        self._append("output_lost", output=output, reason=reason)

    def output_restored(self, output: Output, offline_s: float, attempts: int) -> None:
        self._append(
            "output_restored",
            output=output,
            offline_s=round(max(0.0, offline_s), 3),
            attempts=attempts,
        )

    def output_stop(
        self, output: Output, *, frames: int, dropped: int, refused: int, reconnects: int
    ) -> None:
        self._append(
            "output_stop",
            output=output,
            frames=frames,
            dropped=dropped,
            refused=refused,
            reconnects=reconnects,
        )
        self.log.sync()

    @contextlib.contextmanager
    def stopping(self) -> Iterator[Outcome]:
        """The run's body: `run_stop` is written on the way out whatever happens, with the
        status the body set (`outcome.status`), "interrupted" on Ctrl-C, "error" otherwise."""
        outcome = Outcome()
        try:
            yield outcome
        except KeyboardInterrupt:
            outcome.status = "interrupted"
            raise
        except BaseException as exc:
            outcome.status, outcome.error = "error", exc
            raise
        finally:
            self.stop(outcome.status, outcome.error)

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


class ShowsProvider(Protocol):
    """Where a run shows its detector's execution provider (the live run's status board)."""

    detector_provider: str | None


def announce_detector(
    detector: FaceDetector, trail: AuditTrail, board: ShowsProvider | None = None
) -> None:
    """Once a detector is built: its execution provider into the audit log (a `detector_ready`
    record) and the status board, and a fallback from the configured provider onto stderr."""
    trail.detector_ready(detector)
    if board is not None:
        board.detector_provider = providers_of(detector)[0]
    warning = fallback_warning(detector)
    if warning is not None:
        print(warning, file=sys.stderr)
