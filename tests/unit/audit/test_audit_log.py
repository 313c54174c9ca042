"""The audit log's writer, device key and record schema, without the pipeline: a power cut's
torn line is reported and then acknowledged, the chain continues across runs, one writer at a
time, and no record type can carry anything but counts, timings, hashes, names and settings."""

from __future__ import annotations

import json
import os
import re
import stat
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

import edge.audit.trail as trail_module
from conftest import AuditedRun
from edge.audit import AuditLog, AuditTrail, load_or_create, verify_log
from edge.audit.keys import PRIVATE_NAME, load_public
from edge.audit.records import RECORD_TYPES, Cause, ModelRef
from edge.audit.summary import render_summary
from edge.config import Config
from edge.digest import sha256_file
from edge.errors import AuditError
from edge.run import RunReport
from edge.sinks.base import Published


def _run(path: Path, keys: Path, *, stop: bool = True, frames: int = 10) -> AuditTrail:
    key, _ = load_or_create(keys)
    log = AuditLog(path, key)
    trail = AuditTrail(log, Config())
    trail.start("camera")
    report = RunReport(frames_in=frames, frames_out=frames, faces=2 * frames)
    for _ in range(frames):
        report.detect.add(10.0)
    out = path.parent / f"seg{trail.run[:4]}.mp4"
    out.write_bytes(b"segment " + trail.run.encode())
    published = Published(out, *sha256_file(out), frames, 0.0, frames / 30)
    trail.file_closed(report, published, "video", None)
    if stop:
        trail.stop("ok")
        log.close()
    return trail


# --- the device key --------------------------------------------------------------------------


def test_the_device_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key, created = load_or_create(keys)
    again, created_again = load_or_create(keys)
    assert created and not created_again
    assert again.key_id == key.key_id and again.device_id == key.device_id
    assert stat.S_IMODE((keys / PRIVATE_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert re.fullmatch(r"[0-9a-f]{32}", key.device_id)
    assert load_public(keys / "device-key.pub.pem") == key.public


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    load_or_create(keys)
    (keys / PRIVATE_NAME).chmod(0o644)
    with pytest.raises(AuditError, match="chmod 600"):
        load_or_create(keys)


# --- the writer ------------------------------------------------------------------------------


def test_runs_continue_one_chain(tmp_path: Path) -> None:
    log = tmp_path / "out" / "veil-audit.jsonl"  # the key folder is never among the media
    _run(log, tmp_path / "keys")
    _run(log, tmp_path / "keys")
    seqs = [json.loads(line)["seq"] for line in log.read_bytes().splitlines()]
    assert seqs == list(range(len(seqs)))
    verdict = verify_log(log, media=log.parent)
    assert verdict.ok, verdict.problems
    assert len(verdict.runs) == 2 and verdict.media_checked == 2
    assert [r.counts["frames_out"] for r in verdict.runs] == [10, 10]


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    key, _ = load_or_create(tmp_path / "keys")
    with AuditLog(tmp_path / "log.jsonl", key):
        with pytest.raises(AuditError, match="in use by another Veil run"):
            AuditLog(tmp_path / "log.jsonl", key)
    AuditLog(tmp_path / "log.jsonl", key).close()  # released on close


def test_a_file_that_is_not_a_log_is_not_appended_to(tmp_path: Path) -> None:
    key, _ = load_or_create(tmp_path / "keys")
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"hello": "world"}\n', encoding="utf-8")
    with pytest.raises(AuditError, match="not a Veil audit log"):
        AuditLog(notes, key)
    assert notes.read_text(encoding="utf-8") == '{"hello": "world"}\n'


@pytest.mark.parametrize(
    "body",
    [
        {"type": "summary", "box": [10, 20, 30, 40]},
        {"type": "face_crop", "pixels": "AAAA"},
        {"type": "file_deleted", "name": "a.mp4", "sha256": "00" * 32, "reason": [1, 2, 3, 4]},
    ],
    ids=["extra-field", "unknown-type", "list-of-numbers"],
)
def test_the_writer_refuses_a_record_outside_the_schema(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    key, _ = load_or_create(tmp_path / "keys")
    path = tmp_path / "log.jsonl"
    with AuditLog(path, key) as log:
        with pytest.raises(AuditError, match="refusing to log"):
            log.append({"run": "0" * 32, **body})
    assert path.read_bytes() == b""


# --- power cuts ------------------------------------------------------------------------------


def test_a_torn_last_line_is_reported_then_acknowledged_by_the_next_run(tmp_path: Path) -> None:
    log = tmp_path / "veil-audit.jsonl"
    trail = _run(log, tmp_path / "keys", stop=False)
    lines_before = log.read_bytes().count(b"\n")
    trail.log.close()
    # A power cut in the middle of the next write: only its first bytes reached the disk.
    with log.open("ab") as f:
        f.write(b'{"detect_ms_p50":12.5,"dropped":0,"fa')

    verdict = verify_log(log)
    assert not verdict.ok
    assert verdict.problems[0].line == lines_before + 1
    assert "cut off mid-write" in verdict.problems[0].message

    _run(log, tmp_path / "keys")
    verdict = verify_log(log)
    assert verdict.ok, verdict.problems
    assert any("torn record (38 bytes" in note for note in verdict.notes), verdict.notes
    assert any("has no run_stop" in note for note in verdict.notes), verdict.notes
    # The torn bytes are still there: append-only, nothing dropped.
    assert b'"fa\n' in log.read_bytes()


def test_a_run_cut_off_between_records_is_reported_then_acknowledged(tmp_path: Path) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _run(log, tmp_path / "keys", stop=False).log.close()
    verdict = verify_log(log)
    assert not verdict.ok and "no run_stop" in verdict.problems[0].message
    _run(log, tmp_path / "keys")
    assert verify_log(log).ok


def test_a_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _run(log, tmp_path / "keys", stop=False).log.close()
    log.write_bytes(log.read_bytes()[:-1])  # the cut fell on the very last byte
    assert "lacks its newline" in verify_log(log).problems[0].message
    _run(log, tmp_path / "keys")
    verdict = verify_log(log)
    assert verdict.ok, verdict.problems
    assert not any("torn" in note for note in verdict.notes)


# --- summaries -------------------------------------------------------------------------------


def test_summaries_hold_the_counts_since_the_last_and_add_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(trail_module.time, "monotonic", lambda: clock[0])
    key, _ = load_or_create(tmp_path / "keys")
    with AuditLog(tmp_path / "log.jsonl", key) as log:
        trail = AuditTrail(log, Config())
        trail.start("camera")
        report = RunReport()
        for frame in range(1, 301):
            report.frames_in = report.frames_out = frame
            report.faces += 1
            report.detect.add(float(frame % 7))
            if frame == 250:  # a detector failure: reported within a second, not a minute
                report.obscured += 1
                report.failures["detector: RuntimeError"] += 1
            clock[0] += 0.25  # 4 frames a second: a periodic summary every 60 s = 240 frames
            trail.observe(report)
        trail.summary(report, if_new=True)
        trail.stop("fail-closed")
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_bytes().splitlines()]
    summaries = [r for r in records if r["type"] == "summary"]
    assert [s["frames_in"] for s in summaries] == [240, 10, 50]
    assert [s["fail_closed"] for s in summaries] == [{}, {"detector: RuntimeError": 1}, {}]
    assert records[-1]["frames_in"] == 300 and records[-1]["obscured"] == 1
    assert summaries[0]["detect_ms_p50"] == 3.0 and summaries[0]["detect_ms_p99"] == 6.0
    assert verify_log(tmp_path / "log.jsonl").ok


def test_stop_totals_that_disagree_with_the_summaries_are_caught(tmp_path: Path) -> None:
    log = tmp_path / "veil-audit.jsonl"
    trail = _run(log, tmp_path / "keys", stop=False)
    trail.totals["faces"] += 5  # a stop record that claims more than was summarised
    trail.stop("ok")
    trail.log.close()
    verdict = verify_log(log)
    assert not verdict.ok and "differ from the run's summaries" in verdict.problems[0].message


# --- the schema: an allow-list of plain types --------------------------------------------------

FORBIDDEN_NAME = re.compile(
    r"box|bbox|xyxy|landmark|keypoint|embedding|pixel|crop|region|thumb|image_data|face_id"
)
SCALARS = {int, float, bool, str, type(None)}


def _allowed(annotation: Any, path: str) -> None:
    """Scalars and Literals; a dict of str to scalars; a tuple of ModelRef or of a Literal's
    names. Nothing else."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        _allowed(args[0], path)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            _allowed(arg, path)
    elif origin is Literal:
        assert all(isinstance(a, (str, int)) for a in args), path
    elif origin is dict:
        assert typing.get_origin(args[0]) is typing.Annotated or args[0] is str, path
        _allowed(args[1], path + "[value]")
        # Numbers by name only under a closed kind of key (a stage and an exception class):
        # free keys could spell out coordinates.
        assert not _is_number(args[1]) or args[0] == Cause, f"{path}: a dict of numbers"
    elif origin is tuple:
        # A tuple of ModelRef, or of names from a closed Literal (execution providers).
        closed = typing.get_origin(args[0]) is Literal and len(args) == 2 and args[1] is Ellipsis
        assert args == (ModelRef, Ellipsis) or closed, (
            f"{path}: only a tuple of ModelRef is allowed"
        )
        if closed:
            _allowed(args[0], path + "[]")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert annotation is ModelRef, path
        for name, info in annotation.model_fields.items():
            _allowed(info.annotation, f"{path}.{name}")
    else:
        assert annotation in SCALARS, f"{path}: {annotation!r} is not an allowed type"


def _is_number(annotation: Any) -> bool:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation in (int, float)


@pytest.mark.parametrize("record_type", list(RECORD_TYPES))
def test_every_field_of_every_record_type_is_on_the_allow_list(record_type: str) -> None:
    model = RECORD_TYPES[record_type]
    assert model.model_config.get("extra") == "forbid"
    for name, info in model.model_fields.items():
        assert not FORBIDDEN_NAME.search(name), f"{record_type}.{name}"
        _allowed(info.annotation, f"{record_type}.{name}")


def test_the_allow_list_check_can_fail() -> None:
    class Leaky(BaseModel):
        boxes: list[tuple[float, float, float, float]]

    with pytest.raises(AssertionError):
        _allowed(Leaky.model_fields["boxes"].annotation, "leaky.boxes")
    with pytest.raises(AssertionError):
        _allowed(Leaky, "leaky")


def _json_values_allowed(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            assert not FORBIDDEN_NAME.search(key), path + "." + key
            _json_values_allowed(inner, f"{path}.{key}")
    elif isinstance(value, list):
        assert all(isinstance(v, dict) and set(v) == {"name", "sha256"} for v in value), path
        for v in value:
            _json_values_allowed(v, path + "[]")
    else:
        assert value is None or isinstance(value, (str, int, float, bool)), path
        assert not isinstance(value, str) or len(value) <= 1024, path


def test_a_real_runs_records_hold_only_allowed_values(audited_run: AuditedRun) -> None:
    records = [json.loads(line) for line in audited_run.log.read_bytes().splitlines()]
    assert {r["type"] for r in records} >= {"run_start", "summary", "file_closed", "run_stop"}
    for number, record in enumerate(records, start=1):
        _json_values_allowed(record, f"line {number}")
        RECORD_TYPES[record["type"]].model_validate_json(json.dumps(record))
    start = records[0]
    assert start["settings"]["redact.method"] == "fill"
    assert start["config_sha256"] == Config().sha256()
    assert [m["name"] for m in start["models"]] == ["centerface"]
    assert start["source"] == "files" and start["device"] != ""
    # Faces were found and counted, and not one number in the log could be a face's place.
    assert sum(r.get("faces", 0) for r in records if r["type"] == "summary") > 0
    assert os.path.getsize(audited_run.log) < 8000


def test_a_new_log_whose_first_write_was_cut_off_recovers(tmp_path: Path) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _run(log, tmp_path / "keys")
    log.write_bytes(log.read_bytes()[:100])  # the power went during the very first write
    assert not verify_log(log).ok
    _run(log, tmp_path / "keys")
    verdict = verify_log(log)
    assert verdict.ok, verdict.problems
    assert any("torn record (101 bytes" in note for note in verdict.notes), verdict.notes


def test_removing_an_acknowledged_torn_line_is_caught(tmp_path: Path) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _run(log, tmp_path / "keys", stop=False).log.close()
    with log.open("ab") as f:
        f.write(b'{"detect_ms_p50":1')
    _run(log, tmp_path / "keys")
    log.write_bytes(log.read_bytes().replace(b'{"detect_ms_p50":1\n', b""))
    first = verify_log(log).problems[0]
    assert "torn bytes precede it, but none do" in first.message


def test_hostile_lines_are_problems_not_crashes(tmp_path: Path) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _run(log, tmp_path / "keys")
    data = log.read_bytes()
    for garbage in (b"[" * 100_000, b'{"seq":true}', b"\xff\xfe", b'{"seq":1,"a":' * 900):
        log.write_bytes(data + garbage + b"\n")
        verdict = verify_log(log)
        assert not verdict.ok and verdict.problems[0].line == data.count(b"\n") + 1


def test_a_signature_spelled_another_way_is_caught(tmp_path: Path) -> None:
    """Base64 leaves spare bits in a signature's last character; they must be zero, or one
    record would have several spellings and the published head hash would not be unique."""
    log = tmp_path / "veil-audit.jsonl"
    _run(log, tmp_path / "keys")
    lines = log.read_bytes().splitlines()
    obj = json.loads(lines[-1])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = obj["sig"][-3]  # 64 bytes: 86 characters, "==", so 4 spare bits in the 86th
    obj["sig"] = obj["sig"][:-3] + alphabet[alphabet.index(last) ^ 1] + "=="
    lines[-1] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    first = verify_log(log).problems[0]
    assert first.line == len(lines) and "signature does not verify" in first.message


def test_frames_not_taken_are_counted_in_the_summary_the_stop_and_the_verdict(
    tmp_path: Path,
) -> None:
    key, _ = load_or_create(tmp_path / "keys")
    log = AuditLog(tmp_path / "veil-audit.jsonl", key)
    trail = AuditTrail(log, Config())
    trail.start("camera")
    # A live run that took 2 frames of 3 to keep up: 30 in, 20 recorded, 10 not taken.
    trail.summary(RunReport(frames_in=30, frames_out=20, not_taken=10))
    trail.stop("ok")
    log.close()
    records = [json.loads(line) for line in log.path.read_bytes().splitlines()]
    assert [(r["type"], r["not_taken"]) for r in records if "not_taken" in r] == [
        ("summary", 10),
        ("run_stop", 10),
    ]
    verdict = verify_log(log.path)
    assert verdict.ok, verdict.problems
    assert verdict.runs[0].counts["not_taken"] == 10
    assert "frames: 30 in, 20 out, 0 dropped, 0 fully obscured, 10 not taken;" in (
        render_summary(verdict)
    )
