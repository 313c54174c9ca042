"""`veil redact` writes the audit log; `veil audit verify|show|pubkey` through the real command."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from unittest.mock import patch

import pytest

from conftest import AuditedRun, Clip, veil
from edge.audit import DEFAULT_LOG_NAME, verify_log
from edge.audit.keys import PRIVATE_NAME, load_or_create, raw_public
from edge.cli.main import main
from edge.detect import DETECTORS
from helpers.detectors import FlakyDetector


def test_verify_passes_a_real_run_with_its_key_and_media(audited_run: AuditedRun) -> None:
    result = veil(
        "audit",
        "verify",
        audited_run.log,
        "--pubkey",
        audited_run.pubkey,
        "--media",
        audited_run.out,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "1 run(s)" in out and "3 logged, 3 checked against their hashes" in out
    assert "fail-closed: none" in out and out.strip().endswith(
        "OK: the chain, every signature and every sequence number hold"
    )
    assert "origin NOT checked" not in out


def test_verify_without_a_key_says_origin_is_unchecked(audited_run: AuditedRun) -> None:
    result = veil("audit", "verify", audited_run.log)
    assert result.returncode == 0
    assert "origin NOT checked" in result.stdout


def test_verify_fails_on_an_edited_log_and_names_the_line(
    audited_run: AuditedRun, tmp_path: Path
) -> None:
    lines = audited_run.log.read_bytes().splitlines()
    summary = next(i for i, line in enumerate(lines) if b'"type":"summary"' in line)
    obj = json.loads(lines[summary])
    obj["faces"] -= 1
    lines[summary] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    log = tmp_path / DEFAULT_LOG_NAME
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    result = veil("audit", "verify", log, "--pubkey", audited_run.pubkey)
    assert result.returncode == 1
    assert f"FAILED: line {summary + 1}, seq {summary}: the signature does not verify" in (
        result.stdout
    )


def test_show_renders_runs_and_files(audited_run: AuditedRun) -> None:
    result = veil("audit", "show", audited_run.log, "--pubkey", audited_run.pubkey)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("run "))
    assert header.split() == [
        "run",
        "started",
        "(UTC)",
        "status",
        "in",
        "out",
        "dropped",
        "obscured",
        "faces",
        "not-taken",
        "files",
        "fail-closed",
    ]
    for name in ("clip.mp4", "face.jpg", "face.png"):
        assert any(line.startswith(name) for line in result.stdout.splitlines()), name


@pytest.mark.parametrize(
    "args, code, mention",
    [
        (["audit", "verify", "missing.jsonl"], 2, "audit log not found"),
        (["audit", "verify", "{log}", "--pubkey", "nokey.pem"], 2, "public key not found"),
        (["audit", "verify", "{log}", "--media", "nofolder"], 2, "media folder not found"),
    ],
    ids=["no-log", "no-key", "no-media"],
)
def test_audit_usage_errors(
    audited_run: AuditedRun, tmp_path: Path, args: list[str], code: int, mention: str
) -> None:
    result = veil(*(a.format(log=audited_run.log) for a in args), cwd=tmp_path)
    assert result.returncode == code
    assert result.stderr.startswith("veil: error:") and mention in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_pubkey_makes_a_key_on_a_fresh_device(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    result = veil("audit", "pubkey", "--key-dir", keys)
    assert result.returncode == 0
    assert result.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE((keys / PRIVATE_NAME).stat().st_mode) == 0o600
    assert veil("audit", "pubkey", "--key-dir", keys).stdout == result.stdout


def test_a_key_folder_inside_the_output_is_refused(sample_clip: Clip, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = veil("redact", sample_clip.path, "-o", out / "o.mp4", "--key-dir", out / "keys")
    assert result.returncode == 2
    assert "must never be published" in result.stderr
    assert not out.exists()


def test_runs_append_to_one_log_given_with_audit_log(
    audited_run: AuditedRun, tmp_path: Path
) -> None:
    log = tmp_path / "evidence" / "device.jsonl"
    for name in ("face.png", "face.jpg"):
        result = veil(
            "redact", audited_run.src / name, "-o", tmp_path / "out" / name, "--audit-log", log
        )
        assert result.returncode == 0, result.stderr
    assert not (tmp_path / "out" / DEFAULT_LOG_NAME).exists()
    verdict = verify_log(log, media=tmp_path / "out")
    assert verdict.ok, verdict.problems
    assert len(verdict.runs) == 2 and verdict.media_checked == 2
    assert sorted(verdict.files) == ["../out/face.jpg", "../out/face.png"]


def test_a_fail_closed_run_exits_3_and_logs_each_cause(sample_clip: Clip, tmp_path: Path) -> None:
    flaky = FlakyDetector(every=10)
    with patch.dict(DETECTORS, {"centerface": lambda cfg, still: flaky}):
        code = main(["redact", str(sample_clip.path), "-o", str(tmp_path / "o.mp4")])
    assert code == 3
    verdict = verify_log(tmp_path / DEFAULT_LOG_NAME, media=tmp_path)
    assert verdict.ok, verdict.problems
    (run,) = verdict.runs
    assert run.status == "fail-closed"
    assert run.fail_closed == {"detector: RuntimeError": 6}
    assert run.counts["obscured"] == 6 and run.counts["frames_out"] == 60


def test_the_log_moves_with_its_outputs(audited_run: AuditedRun, tmp_path: Path) -> None:
    moved = tmp_path / "published"
    shutil.copytree(audited_run.out, moved)
    result = veil("audit", "verify", moved / DEFAULT_LOG_NAME, "--media", moved)
    assert result.returncode == 0, result.stdout


def test_c2pa_manifests_are_signed_into_outputs_and_verified(
    audited_run: AuditedRun, tmp_path: Path
) -> None:
    c2pa = pytest.importorskip("edge.audit.c2pa")
    if not c2pa.available():
        pytest.skip(f"c2pa-python does not load on this machine: {c2pa.MISSING}")
    profile = tmp_path / "c2pa.toml"
    profile.write_text("[audit]\nc2pa = true\n", encoding="utf-8")
    out = tmp_path / "out"
    result = veil("redact", audited_run.src, "-o", out, "--config", profile)
    assert result.returncode == 0, result.stderr
    result = veil("audit", "verify", out / DEFAULT_LOG_NAME, "--media", out)
    assert result.returncode == 0, result.stdout
    assert "3 checked against their hashes, 3 C2PA manifest(s) valid" in result.stdout
    assert not list(out.rglob(".*partial*"))
    # Each output carries a manifest signed by the device key; the unsealed run's outputs none.
    key = load_or_create(Path(os.environ["VEIL_KEY_DIR"]))[0]
    for name in ("clip.mp4", "face.png", "face.jpg"):
        assert c2pa.check_file(out / name, raw_public(key.public)) is None, name
    assert c2pa.check_file(audited_run.out / "face.png", raw_public(key.public)) == (
        "no C2PA manifest"
    )
