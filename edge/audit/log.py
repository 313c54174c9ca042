"""The writer: appends signed, hash-chained records to a JSON Lines file, one writer at a time.

Each record is a single `write()` of one whole line to a file opened with O_APPEND, so a power
cut can tear at most the last line. Opening a log reads its tail: the chain continues from the
last whole record, and whatever follows it (a torn line) is kept and acknowledged by size and
SHA-256 in the next `run_start`, never dropped. `sync()` (fsync) runs at each file or segment
boundary and at stop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.audit.keys import DeviceKey
from edge.audit.records import FORMAT, GENESIS, RECORD_TYPES, canonical, signed_part
from edge.config import first_problem
from edge.digest import sha256_bytes
from edge.durable import file_in_the_way, sync_folder
from edge.errors import AuditError

_TAIL = 1 << 20  # records are a few hundred bytes; the last whole one is within this
_FIRST = b'{"config_sha256":"'  # how a run_start begins, in canonical (sorted) form


@dataclass(frozen=True)
class Tail:
    """What a log ends with: where the chain continues, and anything after the last record."""

    seq: int
    prev: str
    unclosed_run: str | None
    torn: bytes  # bytes after the last whole record (a torn write), with its closing newline
    unterminated: bool = False  # the last whole record lacks its newline (cut just before it)
    torn_padded: bool = False  # `torn` ends with a newline the file does not have yet

    def pending(self) -> bytes:
        """What to write before the next record so that it starts on a line of its own (the
        torn bytes stay where they are; only their closing newline is missing)."""
        return b"\n" if self.torn_padded or self.unterminated else b""


def parse_record(line: bytes) -> dict[str, Any] | None:
    """The record on `line` if it is one whole record in canonical form, else None."""
    try:
        obj = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    try:
        if canonical(obj) != line:
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return obj


def torn_write(region: bytes) -> bool:
    """Whether `region`, the bytes between two whole records (its newline included), can be
    what a power cut leaves: the start of a record whose write was cut off, or zeros where the
    file system had not written it yet; two such lines at most (a run that was cut off while
    writing its first record, after one that was). Anything else was put there."""
    lines = region.removesuffix(b"\n").split(b"\n")
    return len(lines) <= 2 and all(
        not line.strip(b"\0") or line.startswith(b'{"') or b'{"'.startswith(line) for line in lines
    )


def read_tail(data: bytes, whole_file: bool) -> Tail:
    """Find the last whole record in `data`, the end of a log (all of it if `whole_file`)."""
    if not data:
        return Tail(0, GENESIS, None, b"")
    lines = data.split(b"\n")
    # Without the whole file the first piece may be the end of a longer line: not a candidate.
    candidates = range(len(lines) - 1, -1 if whole_file else 0, -1)
    for i in candidates:
        obj = parse_record(lines[i])
        if obj is None:
            continue
        end = sum(len(x) + 1 for x in lines[: i + 1])  # just past its newline
        torn = data[end:]
        padded = bool(torn) and not torn.endswith(b"\n")
        return Tail(
            seq=int(obj["seq"]) + 1,
            prev=sha256_bytes(lines[i]),
            unclosed_run=None if obj.get("type") == "run_stop" else str(obj.get("run")),
            torn=torn + b"\n" if padded else torn,
            unterminated=end > len(data),
            torn_padded=padded,
        )
    body = data.removesuffix(b"\n")
    if whole_file and b"\n" not in body and (_FIRST.startswith(body) or body.startswith(_FIRST)):
        # A new log whose first record (a run_start) was cut off mid-write: the next run_start
        # names these bytes, and `verify` reports them.
        padded = not data.endswith(b"\n")
        return Tail(0, GENESIS, None, data + b"\n" if padded else data, torn_padded=padded)
    raise AuditError("no whole audit record in its last MiB: not a Veil audit log, or damaged")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """An open audit log. Records go through `append`; `close` releases the lock."""

    def __init__(self, path: Path, key: DeviceKey) -> None:
        self.path = path
        self.key = key
        self._fd = -1
        # The first write or sync that failed, as every later one reports it: "no space left",
        # not "failed earlier".
        self._failure: str | None = None
        if path.is_symlink():
            # A link planted where the log goes would have Veil create or append to its target.
            raise AuditError(f"audit log {path} is a symbolic link: give the log's real path")
        existed = path.exists()
        if existed and not path.is_file():
            raise AuditError(f"audit log {path} is not a file")
        blocker = file_in_the_way(path)
        if blocker is not None:
            raise AuditError(f"cannot write audit log {path}: {blocker} is a file, not a folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or exc
            raise AuditError(f"cannot open audit log {path}: {why}") from None
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AuditError(f"audit log {path} is in use by another Veil run") from None
            size = os.fstat(self._fd).st_size
            start = max(0, size - _TAIL)
            try:
                self.tail = read_tail(os.pread(self._fd, size - start, start), start == 0)
            except AuditError as exc:
                raise AuditError(f"cannot append to {path}: {exc}") from None
            if not existed:
                try:
                    sync_folder(path.parent)
                except OSError:
                    pass  # the log still works; only its name is not yet durable
        except BaseException:
            os.close(self._fd)
            raise
        self._seq = self.tail.seq
        self._prev = self.tail.prev
        self._pending = self.tail.pending()  # written before the first record, so the chain resumes
        # A live run logs from several threads (segments, source faults, summaries).
        self._lock = threading.Lock()

    def append(self, body: dict[str, Any]) -> int:
        """Sign and append one record; returns its sequence number."""
        with self._lock:
            return self._append(body)

    def _append(self, body: dict[str, Any]) -> int:
        if self._failure is not None:
            raise AuditError(f"{self._failure}; nothing more is written to it")
        obj = {
            "v": FORMAT,
            "seq": self._seq,
            "utc": utc_now(),
            "mono": round(time.monotonic(), 6),
            "prev": self._prev,
            **body,
        }
        obj["sig"] = self.key.sign(signed_part(obj))
        line = canonical(obj)
        try:
            RECORD_TYPES[obj["type"]].model_validate_json(line)
        except (KeyError, ValidationError) as exc:
            detail = first_problem(exc) if isinstance(exc, ValidationError) else "unknown type"
            raise AuditError(f"refusing to log a {obj.get('type')} record: {detail}") from None
        # Ctrl-C or SIGTERM must not land between the write and the state that follows it, or
        # the run's stop record would repeat a seq: hold them until both are done.
        with _signals_held():
            self._write(self._pending + line + b"\n")
            self._pending = b""
            self._prev = sha256_bytes(line)
            self._seq += 1
        return int(obj["seq"])

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise self._failed("write", exc) from None

    def sync(self) -> None:
        if self._failure is not None:
            raise AuditError(f"{self._failure}; nothing more is written to it")
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise self._failed("sync", exc) from None

    def _failed(self, action: str, exc: OSError) -> AuditError:
        self._failure = f"cannot {action} audit log {self.path}: {exc.strerror or exc}"
        return AuditError(self._failure)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)  # also releases the lock
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def logged_files(log: Path) -> set[Path]:
    """Every file the log says was closed, as resolved paths (names are relative to the log)."""
    found: set[Path] = set()
    try:
        lines = log.read_bytes().splitlines()
    except FileNotFoundError:
        return found
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn line: the log's own recovery deals with it
        if isinstance(record, dict) and record.get("type") == "file_closed":
            found.add((log.parent / str(record.get("name"))).resolve())
    return found


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
