"""The audit log against an attacker who can write to the output folder or fill its disk, and
its own accounting: no file is written through a planted link, a full disk is reported as a full
disk, every summary's fail-closed causes add up (and `verify` says so when they do not), and a
published head shows a log cut back or rewritten after it, even where a cut passes for a torn
write."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Clip, veil
from edge.audit import AuditLog, AuditTrail, load_or_create, verify_log
from edge.cli.run_cmd import CANNOT_KEEP_UP
from edge.config import Config
from edge.run import RunReport, StatusBoard
from edge.sample import write_sample
from helpers.runs import records

FAST = """
[detector]
backend = "blazeface"
[detector.blazeface]
model = "short"
tiles = 0
[live]
max_latency_ms = 400.0
[record]
segment_seconds = 2.0
fragment_seconds = 0.5
preset = "ultrafast"
min_free_bytes = 0
[audit]
summary_seconds = 1.0
"""


@pytest.fixture()
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text(FAST, encoding="utf-8")
    return path


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("veil: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# --- planted links ------------------------------------------------------------------------------


def test_a_planted_symlink_as_the_log_is_refused_and_its_target_never_made(
    sample_clip: Clip, profile: Path, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere" / "made-by-veil"
    target.parent.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "veil-audit.jsonl").symlink_to(target)  # dangling: O_CREAT would make the target
    redact = veil("redact", sample_clip.path, "-o", out)
    assert redact.returncode == 1
    assert "is a symbolic link" in one_error_line(redact.stderr)
    run = veil(
        "run", "--config", profile, "--source", f"file:{sample_clip.path}", "--output-dir", out
    )  # fmt: skip
    assert run.returncode == 1
    assert "is a symbolic link" in one_error_line(run.stderr)
    assert not target.exists()
    assert sorted(p.name for p in out.iterdir()) == ["veil-audit.jsonl"]  # nothing published


def test_the_status_file_is_never_written_through_a_planted_link(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("keep me\n", encoding="utf-8")
    (tmp_path / ".status.json.tmp").symlink_to(target)
    board = StatusBoard(tmp_path / "status.json", RunReport(), tmp_path, "file:x.mp4", "0" * 32)
    board.write()
    assert target.read_text(encoding="utf-8") == "keep me\n"
    status = tmp_path / "status.json"
    assert not status.is_symlink() and json.loads(status.read_text())["state"] == "running"


# --- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_under_the_log_is_reported_as_such(
    sample_clip: Clip, profile: Path, tmp_path: Path, tmpfs: Callable[[int], Path]
) -> None:
    disk = tmpfs(1)
    # One page left: the run_start fits, a few summaries later the log cannot grow.
    (disk / "fill").write_bytes(b"\0" * (1024 * 1024 - 4096))
    proc = veil(
        "run", "--config", profile, "--source", f"file:{sample_clip.path}", "--realtime",
        "--loop", "--duration", "20", "--output-dir", tmp_path / "rec",
        "--audit-log", disk / "veil-audit.jsonl",
    )  # fmt: skip
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert "No space left on device" in line and "failed earlier" not in line
    assert (disk / "veil-audit.jsonl").stat().st_size > 0  # it did log, until the disk was full


# --- accounting ---------------------------------------------------------------------------------


def _log_with(tmp_path: Path, summaries: list[dict[str, Any]]) -> Path:
    """A real log, signed by a real key, holding one run with `summaries` as written."""
    path = tmp_path / "veil-audit.jsonl"
    key, _ = load_or_create(tmp_path / "keys")
    with AuditLog(path, key) as log:
        trail = AuditTrail(log, Config())
        trail.start("camera", "rtsp")
        for body in summaries:
            fields = {"frames_in": 0, "frames_out": 0, "faces": 0, **body}
            trail._append(
                "summary", **fields, detect_ms_p50=None, detect_ms_p99=None
            )  # a writer that miscounts
            trail.totals.update({k: v for k, v in fields.items() if k != "fail_closed"})
        trail.stop("ok")
    return path


def test_verify_reports_a_summary_whose_causes_do_not_add_up(tmp_path: Path) -> None:
    path = _log_with(
        tmp_path,
        [
            {"dropped": 5, "obscured": 0, "fail_closed": {"overload": 5}},
            {"dropped": 19102, "obscured": 1, "fail_closed": {"overload": 19077, "late": 1}},
        ],
    )
    verdict = verify_log(path)
    assert not verdict.ok and len(verdict.problems) == 1
    problem = verdict.problems[0]
    assert (problem.line, problem.seq) == (3, 2)
    assert "causes add up to 19078, not to its 19102 dropped + 1 obscured" in problem.message
    shown = veil("audit", "verify", path)
    assert shown.returncode == 1
    assert [line for line in shown.stdout.splitlines() if line.startswith("FAILED")] == [
        f"FAILED: line 3, seq 2: {problem.message}"
    ]


def test_frames_dropped_while_a_summary_is_written_are_in_the_next_one(tmp_path: Path) -> None:
    """Another thread drops a frame while the summary record is being signed and written: the
    summary holds the counts and causes of one moment, and the frame is in the next one."""
    key, _ = load_or_create(tmp_path / "keys")
    path = tmp_path / "veil-audit.jsonl"
    report = RunReport()
    with AuditLog(path, key) as log:
        trail = AuditTrail(log, Config())
        trail.start("camera", "rtsp")
        append = log.append

        def append_while_dropping(body: dict[str, Any]) -> int:
            if body["type"] == "summary":
                other = threading.Thread(target=lambda: report.fail("overload", dropped=True))
                other.start()
                other.join()
            return append(body)

        log.append = append_while_dropping  # type: ignore[method-assign]
        report.fail("late", dropped=True)
        trail.summary(report)
        trail.summary(report, if_new=True)
        log.append = append  # type: ignore[method-assign]
        trail.summary(report, if_new=True)
        trail.stop("ok")
    summaries = [r for r in records(path) if r["type"] == "summary"]
    assert [(s["dropped"], s["fail_closed"]) for s in summaries] == [
        (1, {"late": 1}),
        (1, {"overload": 1}),
        (1, {"overload": 1}),
    ]
    assert verify_log(path).ok


@pytest.mark.slow
def test_a_loaded_live_runs_summaries_add_up(sample_clip: Clip, tmp_path: Path) -> None:
    """CenterFace searching all of every 720p frame (no sweep), with the shortest wait the
    schedule allows (100 ms) to vouch for each and no lower rate to fall back on: most frames
    are dropped, at capture (overload) and after detection (late), from two threads at once;
    the run says it cannot keep up."""
    profile = tmp_path / "loaded.toml"
    profile.write_text(
        "[schedule]\nsweep = 1\nwhole_every = 1\n[live]\nmax_latency_ms = 100.0\nqueue = 1\n"
        "[audit]\nsummary_seconds = 1.0\n"
        '[record]\nsegment_seconds = 2.0\npreset = "ultrafast"\nmin_free_bytes = 0\n',
        encoding="utf-8",
    )
    out = tmp_path / "rec"
    proc = veil(
        "run", "--config", profile, "--source", f"file:{sample_clip.path}", "--realtime",
        "--loop", "--duration", "8", "--output-dir", out,
    )  # fmt: skip
    assert proc.returncode == CANNOT_KEEP_UP, proc.stderr
    assert "veil: error: cannot keep up" in proc.stderr
    recs = records(out / "veil-audit.jsonl")
    summaries = [r for r in recs if r["type"] == "summary"]
    assert len(summaries) >= 5
    for s in summaries:
        assert sum(s["fail_closed"].values()) == s["dropped"] + s["obscured"], s
    assert sum(s["dropped"] for s in summaries) == recs[-1]["dropped"] > 50
    assert len({c for s in summaries for c in s["fail_closed"]}) >= 2  # more than one thread
    check = veil("audit", "verify", out / "veil-audit.jsonl", "--media", out)
    assert check.returncode == 0, check.stdout


# --- torn writes and the published head -----------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A short, small clip of real faces: these tests are about the log, not the pictures."""
    path = tmp_path_factory.mktemp("small") / "small.mp4"
    return Clip(path, write_sample(path, width=320, height=240, seconds=0.5))


def _redact(clip: Clip, out: Path, log: Path) -> None:
    ran = veil("redact", clip.path, "-o", out, "--audit-log", log)
    assert ran.returncode == 0, ran.stderr


def _head(log: Path) -> str:
    shown = veil("audit", "head", log)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def test_a_run_cut_from_the_log_passes_for_a_torn_write_but_not_a_published_head(
    small: Clip, tmp_path: Path
) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _redact(small, tmp_path / "a", log)
    kept = log.read_bytes()
    _redact(small, tmp_path / "b", log)
    head = _head(log)
    lines = log.read_bytes().splitlines()
    assert head == f"{len(lines) - 1}:{hashlib.sha256(lines[-1]).hexdigest()}"
    assert veil("audit", "verify", log, "--head", head).returncode == 0
    # The attacker: run b's records cut off one byte into its run_start, its output deleted.
    log.write_bytes(kept + b"{")
    shutil.rmtree(tmp_path / "b")
    _redact(small, tmp_path / "c", log)
    alone = veil("audit", "verify", log, "--media", tmp_path)
    assert alone.returncode == 0, alone.stdout  # what a power cut there would leave: no proof
    assert "torn record (2 bytes" in alone.stdout
    against = veil("audit", "verify", log, "--media", tmp_path, "--head", head)
    assert against.returncode == 1
    failed = [line for line in against.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "published head" in failed[0], against.stdout


def test_a_head_is_given_in_the_form_veil_prints(tmp_path: Path, small: Clip) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _redact(small, tmp_path / "a", log)
    for bad in ("12", "x:y", "3:" + "0" * 63):
        shown = veil("audit", "verify", log, "--head", bad)
        assert shown.returncode == 2 and len(shown.stderr.strip().splitlines()) == 1
    assert f"head: {_head(log)}" in veil("audit", "verify", log).stdout
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert veil("audit", "head", empty).returncode == 2


def test_lines_no_power_cut_could_leave_are_not_acknowledged_as_torn(
    small: Clip, tmp_path: Path
) -> None:
    log = tmp_path / "veil-audit.jsonl"
    _redact(small, tmp_path / "a", log)
    with log.open("ab") as file:
        file.write(b"run a deleted this\nand this")  # two lines, neither the start of a record
    _redact(small, tmp_path / "b", log)  # the writer keeps and names them all the same
    verdict = verify_log(log)
    assert not verdict.ok
    assert "not a whole record" in verdict.problems[0].message
    assert not any("torn record" in note for note in verdict.notes)


@pytest.mark.parametrize("fills", ["before the detector's record", "before the file's record"])
def test_an_output_the_full_log_cannot_record_is_not_left_published(
    astronaut: Any, tmp_path: Path, tmpfs: Callable[[int], Path], fills: str
) -> None:
    """The output is renamed into place before its record is written; when the log's disk fills
    in between, the output goes too, so that the folder never holds a file the log does not; nor
    a partial, when the detector's own record fails first."""
    import cv2

    from edge.cli.redact_cmd import Runner
    from edge.errors import VeilError
    from edge.media import Job

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), astronaut)
    out = tmp_path / "out"
    out.mkdir()
    disk = tmpfs(1)
    key, _ = load_or_create(tmp_path / "keys")
    with AuditLog(disk / "veil-audit.jsonl", key) as log:
        trail = AuditTrail(log, Config())
        trail.start("files")
        runner = Runner(Config(), trail, None)
        if fills == "before the file's record":
            runner.detector("image")  # its record written before the disk fills
        # Every byte left: whole pages in another file, then the slack of the log's own last page
        # (a write there needs no new page), so that its next record fails.
        for path, chunk in ((disk / "fill", 4096), (disk / "veil-audit.jsonl", 1)):
            with path.open("ab", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\n" * chunk)
                except OSError:
                    pass
        with pytest.raises((OSError, VeilError)):
            runner.run_job(Job(src, out / "in.png", "image"), False)
    assert list(out.iterdir()) == []
