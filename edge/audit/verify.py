"""Checks an audit log: every line a whole canonical record, sequence numbers without gaps, the
hash chain, each record's signature under its run's key (and that key against the ones given),
each run closed by a `run_stop` whose totals match its summaries, and, given a media folder, that
every logged file is there with its logged hash and that nothing else is (`verify_media`).

The scan goes on after a problem, resynchronising on the record it stands on, so that one edit
yields the problem at that record first. `Verdict.problems[0]` is the first bad record and why.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.audit.keys import key_id, public_from_b64, raw_public, signature_holds
from edge.audit.log import parse_record, torn_write
from edge.audit.records import (
    COUNTS,
    GENESIS,
    RECORD_TYPES,
    DetectorReady,
    FileClosed,
    FileDeleted,
    OutputStart,
    OutputStop,
    Record,
    RunStart,
    RunStop,
    Summary,
    signed_part,
)
from edge.audit.verdict import LoggedFile, Problem, RunInfo, Verdict
from edge.audit.verify_media import check_media
from edge.config import first_problem
from edge.digest import sha256_bytes
from edge.errors import UsageError

__all__ = ["LoggedFile", "Problem", "RunInfo", "Verdict", "verify_log"]


def verify_log(
    path: Path,
    pubkeys: list[Ed25519PublicKey] | None = None,
    media: Path | None = None,
) -> Verdict:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"audit log not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read audit log {path}: {exc.strerror or exc}") from None
    verdict = _Scan(path, data, pubkeys).scan()
    if media is not None:
        if not media.is_dir():
            raise UsageError(f"media folder not found: {media}")
        check_media(verdict, media)
    return verdict


class _Scan:
    def __init__(self, path: Path, data: bytes, pubkeys: list[Ed25519PublicKey] | None) -> None:
        self.verdict = Verdict(path, trusted_keys=pubkeys is not None)
        self.data = data
        self.trusted = None if pubkeys is None else {raw_public(k) for k in pubkeys}
        self.expected = 0
        self.prev = GENESIS
        self.run: RunInfo | None = None
        self.run_key: Ed25519PublicKey | None = None
        self.run_summed: Counter[str] = Counter()
        self.torn_at: tuple[int, int] | None = None  # (line, byte offset) of unparsed bytes

    def problem(self, message: str, line: int | None, seq: int | None) -> None:
        self.verdict.problems.append(Problem(message, line, seq))

    def scan(self) -> Verdict:
        v = self.verdict
        if not self.data:
            self.problem("the log is empty", 1, 0)
            return v
        lines = self.data.split(b"\n")
        terminated = lines[-1] == b""
        if terminated:
            lines.pop()
        offset = 0
        for number, raw in enumerate(lines, start=1):
            last = number == len(lines)
            self.line(number, offset, raw, unterminated=last and not terminated)
            offset += len(raw) + 1
        self.finish(len(lines))
        return v

    def line(self, number: int, offset: int, raw: bytes, *, unterminated: bool) -> None:
        obj = parse_record(raw)
        if obj is None:
            if self.torn_at is None:
                self.torn_at = (number, offset)
            return
        if self.torn_at is not None:
            self.torn(obj, offset)
        elif obj.get("type") == "run_start" and obj.get("torn_bytes"):
            self.problem(
                f"the run says {obj['torn_bytes']} torn bytes precede it, but none do: removed",
                number,
                obj["seq"],
            )
        if unterminated:
            self.problem("the last record lacks its newline: the log was cut off", number, None)
        model = RECORD_TYPES.get(str(obj.get("type")))
        seq = obj["seq"]
        v = self.verdict
        v.records += 1
        line_hash = sha256_bytes(raw)
        before = len(v.problems)
        try:
            if model is None:
                raise ValueError(f"unknown record type {obj.get('type')!r}")
            record: Record | None = model.model_validate_json(raw)  # type: ignore[assignment]
        except (ValidationError, ValueError) as exc:
            why = first_problem(exc) if isinstance(exc, ValidationError) else str(exc)
            self.problem(f"not a valid record: {why}", number, seq)
            record = None
        if record is not None:
            self.chain(record, number)
            if len(v.problems) == before:
                self.sign(record, obj, number)
            if len(v.problems) == before:
                self.account(record, number)
        self.expected = seq + 1
        self.prev = line_hash
        v.head = (seq, line_hash)

    def torn(self, obj: dict[str, object], offset: int) -> None:
        assert self.torn_at is not None
        number, start = self.torn_at
        self.torn_at = None
        region = self.data[start:offset]
        acknowledged = (
            obj.get("type") == "run_start"
            and obj.get("torn_bytes") == len(region)
            and obj.get("torn_sha256") == sha256_bytes(region)
            and torn_write(region)
        )
        if acknowledged:
            self.verdict.notes.append(
                f"line {number}: a torn record ({len(region)} bytes, a write cut off by a power "
                f"loss or crash), acknowledged by the next run (seq {obj['seq']})"
            )
        else:
            self.problem(
                "not a whole record in canonical form: edited, damaged or cut off", number, None
            )

    def chain(self, record: Record, number: int) -> None:
        seq = record.seq
        if seq > self.expected:
            missing = f"seq {self.expected}" + (f" to {seq - 1}" if seq - 1 > self.expected else "")
            self.problem(
                f"{missing} missing: this record (seq {seq}) follows seq {self.expected - 1}",
                number,
                self.expected,
            )
        elif seq < self.expected:
            self.problem(
                f"seq {seq} where {self.expected} was expected: records reordered or repeated",
                number,
                seq,
            )
        elif record.prev != self.prev:
            self.problem(
                "prev does not match the SHA-256 of the record before it: the chain is broken",
                number,
                seq,
            )

    def sign(self, record: Record, obj: dict[str, object], number: int) -> None:
        seq = record.seq
        if isinstance(record, RunStart):
            key = public_from_b64(record.pubkey)
            if key_id(key) != record.key_id:
                self.problem("key_id does not match the run's public key", number, seq)
                return
            if self.trusted is not None and raw_public(key) not in self.trusted:
                self.problem(
                    f"the run is signed by key {record.key_id}, not by a key given with --pubkey",
                    number,
                    seq,
                )
                return
            self.run_key = key
        elif self.run is None or record.run != self.run.run:
            self.problem("the record belongs to no run started before it", number, seq)
            return
        assert self.run_key is not None
        if not signature_holds(self.run_key, str(obj["sig"]), signed_part(obj)):
            self.problem(
                "the signature does not verify: the record was changed, or signed by another key",
                number,
                seq,
            )

    def account(self, record: Record, number: int) -> None:
        v = self.verdict
        if isinstance(record, RunStart):
            if self.run is None and record.unclosed_run is not None:
                self.problem(
                    f"the run says run {record.unclosed_run[:8]} was left unclosed, but the log "
                    "holds its stop record or no such run: records were removed",
                    number,
                    record.seq,
                )
            if self.run is not None:
                if record.unclosed_run == self.run.run:
                    v.notes.append(
                        f"run {self.run.run[:8]} has no run_stop (a power loss or crash), "
                        f"acknowledged by the next run (seq {record.seq})"
                    )
                else:
                    self.problem(
                        f"run {self.run.run[:8]} has no run_stop, and this run does not say it "
                        "found it unclosed: records are missing",
                        number,
                        record.seq,
                    )
            self.run = RunInfo(
                record.run,
                record.utc,
                record.device,
                record.key_id,
                record.veil_version,
                record.source,
            )
            self.run_summed = Counter()
            v.runs.append(self.run)
            return
        run = self.run
        assert run is not None
        if isinstance(record, Summary):
            if (causes := sum(record.fail_closed.values())) != record.dropped + record.obscured:
                self.problem(
                    f"the summary's fail-closed causes add up to {causes}, not to its "
                    f"{record.dropped} dropped + {record.obscured} obscured frames",
                    number,
                    record.seq,
                )
            for name in COUNTS:
                run.counts[name] += getattr(record, name)
            run.fail_closed.update(record.fail_closed)
        elif isinstance(record, FileClosed):
            run.files += 1
            v.files[record.name] = LoggedFile(
                record.name,
                record.kind,
                record.size,
                record.sha256,
                record.frames,
                number,
                record.seq,
                record.source_sha256,
                record.c2pa,
                raw_public(self.run_key) if self.run_key is not None else b"",
            )
        elif isinstance(record, FileDeleted):
            if record.name in v.files:
                v.files[record.name].deleted = True
        elif isinstance(record, DetectorReady):
            fell = ", ".join(record.fallback)
            shown = f"{record.provider or '-'}" + (f" (asked for {fell}: missing)" if fell else "")
            run.outputs.setdefault(f"detector {record.detector}", shown)
        elif isinstance(record, OutputStart):
            token = ", token" if record.token else ""
            run.outputs[record.output] = f"{record.bound}, {record.protocol}{token}"
        elif isinstance(record, OutputStop):
            run.outputs[record.output] = (
                f"{run.outputs.get(record.output, '?')}: {record.frames} frames, "
                f"{record.dropped} dropped, {record.refused} refused, "
                f"{record.reconnects} reconnects"
            )
        elif isinstance(record, RunStop):
            summed = {name: run.counts[name] for name in COUNTS}
            stopped = {name: getattr(record, name) for name in COUNTS}
            if summed != stopped or record.files != run.files:
                self.problem(
                    f"run_stop totals {stopped} and {record.files} file(s) differ from the "
                    f"run's summaries {summed} and {run.files} file(s): records are missing",
                    number,
                    record.seq,
                )
            run.stop_utc = record.utc
            run.status = record.status
            self.run = None

    def finish(self, line_count: int) -> None:
        if self.torn_at is not None:
            number, _ = self.torn_at
            self.problem(
                "not a whole record: the log was cut off mid-write (or edited), and no later run "
                "acknowledges it",
                number,
                None,
            )
        if self.run is not None:
            self.problem(
                f"the log ends inside run {self.run.run[:8]} (no run_stop): records from seq "
                f"{self.expected} on are missing, or the run was cut off or is still going",
                line_count + 1,
                self.expected,
            )
