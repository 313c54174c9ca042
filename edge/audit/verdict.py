"""What checking an audit log finds (`edge.audit.verify`): the problems, each at its line and
sequence number, the runs and files the log records, and what was checked."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edge.names import shown


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None  # 1-based line of the log
    seq: int | None = None  # the record's sequence number (or the missing one)

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        # Escaped here too, whatever built the message: a name in it must not break the line.
        message = shown(self.message)
        return f"{', '.join(where)}: {message}" if where else message


@dataclass
class RunInfo:
    run: str
    start_utc: str
    device: str
    key_id: str
    veil_version: str
    source: str
    stop_utc: str | None = None
    status: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    fail_closed: Counter[str] = field(default_factory=Counter)
    files: int = 0
    # What ran beside the counts: each detector's onnxruntime provider, and the side outputs
    # it opened (preview, stream) with where to (address class) and what they sent and refused.
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class LoggedFile:
    name: str
    kind: str
    size: int
    sha256: str
    frames: int
    line: int
    seq: int
    source_sha256: str | None
    c2pa: bool
    signer: bytes  # the raw public key of the run that logged it
    deleted: bool = False


@dataclass
class Verdict:
    path: Path
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[RunInfo] = field(default_factory=list)
    files: dict[str, LoggedFile] = field(default_factory=dict)
    head: tuple[int, str] | None = None  # last record's seq and line SHA-256
    media_checked: int = 0
    c2pa_checked: int = 0
    trusted_keys: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems
