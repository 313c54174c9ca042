"""Tampering with a real run's audit log or its outputs is caught, at the right record.

The log comes from a real `veil redact` run (a clip and two photos). Each property draws a
random edit: a flipped byte, a deleted record, two swapped records, a cut, a record re-signed
with another key; or replaces, re-encodes, adds or removes a media file. `verify_log` must then
fail, and its first problem must name the record that was touched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import AuditedRun
from edge.audit import verify_log
from edge.audit.keys import key_id, load_public, raw_public
from edge.audit.records import canonical, signed_part
from edge.audit.verify import Verdict

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@contextmanager
def _log_copy(data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "veil-audit.jsonl"
        path.write_bytes(data)
        yield path


def _verify(data: bytes, pubkey: Path | None = None) -> Verdict:
    with _log_copy(data) as path:
        return verify_log(path, None if pubkey is None else [load_public(pubkey)])


def _lines(run: AuditedRun) -> list[bytes]:
    return run.log.read_bytes().splitlines()


def _log(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def test_the_untouched_log_and_its_files_verify(audited_run: AuditedRun) -> None:
    verdict = verify_log(audited_run.log, [load_public(audited_run.pubkey)], media=audited_run.out)
    assert verdict.ok, verdict.problems
    assert verdict.media_checked == 3
    assert sorted(verdict.files) == ["clip.mp4", "face.jpg", "face.png"]
    # The property tests below need every record type of a finished run to be in the log.
    types = [json.loads(line)["type"] for line in _lines(audited_run)]
    assert types[0] == "run_start" and types[-1] == "run_stop"
    assert types.count("file_closed") == 3 and "summary" in types


@FAST
@given(data=st.data())
def test_a_flipped_byte_is_caught_at_its_line(audited_run: AuditedRun, data: st.DataObject) -> None:
    log = audited_run.log.read_bytes()
    pos = data.draw(st.integers(0, len(log) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(log)
    tampered[pos] ^= mask
    verdict = _verify(bytes(tampered))
    assert not verdict.ok
    assert verdict.problems[0].line == log[:pos].count(b"\n") + 1, verdict.problems


@FAST
@given(data=st.data())
def test_a_deleted_record_is_named(audited_run: AuditedRun, data: st.DataObject) -> None:
    lines = _lines(audited_run)
    k = data.draw(st.integers(0, len(lines) - 1), label="deleted seq")
    verdict = _verify(_log(lines[:k] + lines[k + 1 :]))
    assert not verdict.ok
    assert verdict.problems[0].seq == k, verdict.problems


@FAST
@given(data=st.data())
def test_swapped_records_are_caught_where_the_first_moved(
    audited_run: AuditedRun, data: st.DataObject
) -> None:
    lines = _lines(audited_run)
    i = data.draw(st.integers(0, len(lines) - 2), label="i")
    j = data.draw(st.integers(i + 1, len(lines) - 1), label="j")
    lines[i], lines[j] = lines[j], lines[i]
    verdict = _verify(_log(lines))
    assert not verdict.ok
    assert verdict.problems[0].line == i + 1, verdict.problems


@FAST
@given(data=st.data())
def test_a_cut_log_is_caught(audited_run: AuditedRun, data: st.DataObject) -> None:
    log = audited_run.log.read_bytes()
    cut = data.draw(st.integers(0, len(log) - 1), label="bytes kept")
    verdict = _verify(log[:cut])
    assert not verdict.ok
    first = verdict.problems[0]
    whole = log[:cut].count(b"\n")
    if cut and log[cut - 1] == ord("\n"):
        assert first.seq == whole, first  # the first record that is gone
    else:
        assert first.line == whole + 1, first  # the line that was cut through


def _resign(lines: list[bytes], k: int, key: Ed25519PrivateKey) -> list[bytes]:
    """An attacker's edit of record k: changed, re-signed with their key, and the chain after
    it rebuilt (every later record re-signed too), as a forger would."""
    out = lines[:k]
    prev = hashlib.sha256(out[-1]).hexdigest() if out else "0" * 64
    for index in range(k, len(lines)):
        obj = json.loads(lines[index])
        obj["prev"] = prev
        if index == k:
            obj["mono"] = obj["mono"] + 1.0
        if obj["type"] == "run_start":
            obj["pubkey"] = base64.b64encode(raw_public(key.public_key())).decode()
            obj["key_id"] = key_id(key.public_key())
        obj["sig"] = base64.b64encode(key.sign(signed_part(obj))).decode()
        line = canonical(obj)
        out.append(line)
        prev = hashlib.sha256(line).hexdigest()
    return out


@FAST
@given(data=st.data())
def test_a_record_resigned_with_another_key_is_named(
    audited_run: AuditedRun, data: st.DataObject
) -> None:
    lines = _lines(audited_run)
    k = data.draw(st.integers(0, len(lines) - 1), label="record")
    forged = _log(_resign(lines, k, Ed25519PrivateKey.generate()))
    verdict = _verify(forged, audited_run.pubkey)
    assert not verdict.ok
    assert verdict.problems[0].line == k + 1, verdict.problems
    if k > 0:
        # Past the run's first record even the log's own key gives the forgery away.
        assert _verify(forged).problems[0].line == k + 1


def test_a_forged_run_passes_only_without_the_device_key(audited_run: AuditedRun) -> None:
    """The control: a whole log re-signed by someone else is self-consistent; only the
    device's public key tells it apart. That is why `--pubkey` exists."""
    forged = _resign(_lines(audited_run), 0, Ed25519PrivateKey.generate())
    data = _log(forged)
    assert _verify(data).ok
    assert not _verify(data, audited_run.pubkey).ok


@pytest.fixture
def published(audited_run: AuditedRun, tmp_path: Path) -> Path:
    """A copy of the run's output folder (log included), free to tamper with."""
    folder = tmp_path / "out"
    shutil.copytree(audited_run.out, folder)
    return folder


def _file_line(folder: Path, name: str) -> int:
    for number, line in enumerate((folder / "veil-audit.jsonl").read_bytes().splitlines(), start=1):
        obj = json.loads(line)
        if obj["type"] == "file_closed" and obj["name"] == name:
            return number
    raise AssertionError(name)


def _media_verdict(folder: Path) -> Verdict:
    return verify_log(folder / "veil-audit.jsonl", media=folder)


def _reencode(path: Path) -> None:
    with av.open(str(path)) as src:
        frames = [f.to_ndarray(format="bgr24") for f in src.decode(video=0)]
    with av.open(str(path), "w", format="mp4") as dst:
        stream = dst.add_stream("libx264", rate=30)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            dst.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        dst.mux(stream.encode(None))


@pytest.mark.parametrize("name", ["clip.mp4", "face.png", "face.jpg"])
def test_a_changed_output_is_named(published: Path, name: str) -> None:
    path = published / name
    if name.endswith(".mp4"):
        _reencode(path)
    else:
        image = cv2.imread(str(path))
        image[0, 0] ^= 1  # one pixel, re-saved
        assert cv2.imwrite(str(path), image)
    verdict = _media_verdict(published)
    assert not verdict.ok
    assert verdict.problems[0].line == _file_line(published, name)
    assert name in verdict.problems[0].message and "re-encoded" in verdict.problems[0].message


@FAST
@given(data=st.data())
def test_any_flipped_byte_in_an_output_is_caught(
    audited_run: AuditedRun, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(["clip.mp4", "face.png", "face.jpg"]), label="file")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        shutil.copytree(audited_run.out, out)
        content = bytearray((out / name).read_bytes())
        content[data.draw(st.integers(0, len(content) - 1), label="position")] ^= 0xFF
        (out / name).write_bytes(bytes(content))
        verdict = _media_verdict(out)
        assert not verdict.ok
        assert verdict.problems[0].line == _file_line(out, name)


def test_a_removed_output_is_named(published: Path) -> None:
    (published / "face.png").unlink()
    verdict = _media_verdict(published)
    assert not verdict.ok
    assert verdict.problems[0].line == _file_line(published, "face.png")
    assert "missing" in verdict.problems[0].message


@pytest.mark.parametrize(
    "added",
    ["extra.mp4", "sub/extra.jpg", "EXTRA.PNG", "x.webm", "x.mp4.bak", "README.txt", ".hidden"],
)
def test_any_added_file_is_named(published: Path, added: str) -> None:
    """Whatever its name: `verify --media` once knew only Veil's own suffixes (issue 21)."""
    target = published / added
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(np.random.default_rng(0).bytes(1000))
    verdict = _media_verdict(published)
    assert not verdict.ok
    assert [str(p) for p in verdict.problems] == [
        f"{added} is a file the log does not name: added, or written by a run that was not logged"
    ]


@pytest.mark.parametrize("name", ["x.webm", "x.mp4.bak", "face.png.orig"])
def test_a_copy_of_an_original_under_any_name_is_called_out(
    audited_run: AuditedRun, published: Path, name: str
) -> None:
    original = "clip.mp4" if "mp4" in name or "webm" in name else "face.png"
    shutil.copy(audited_run.src / original, published / name)
    verdict = _media_verdict(published)
    assert [p.message for p in verdict.problems] == [
        f"{name} is the unredacted original of {original} (seq "
        f"{verdict.files[original].seq}): never publish it"
    ]


def test_a_link_or_a_pipe_in_the_folder_is_named(audited_run: AuditedRun, published: Path) -> None:
    (published / "face.webm").symlink_to(audited_run.src / "face.png")
    (published / "elsewhere").symlink_to(audited_run.src, target_is_directory=True)
    os.mkfifo(published / "pipe.mp4")  # read, it would hang the check
    verdict = _media_verdict(published)
    assert [p.message for p in verdict.problems] == [
        "elsewhere is a symbolic link the log does not name",
        "face.webm is a symbolic link the log does not name",
        "pipe.mp4 is not a regular file, and the log does not name it",
    ]


def test_a_status_file_is_accounted_for_only_when_it_is_one(
    audited_run: AuditedRun, published: Path
) -> None:
    status = {"state": "stopped", "run": "ab" * 16, "frames_in": 3, "frames_out": 3}
    (published / "status.json").write_text(json.dumps(status), encoding="utf-8")
    assert _media_verdict(published).ok
    shutil.copy(audited_run.src / "face.jpg", published / "status.json")
    verdict = _media_verdict(published)
    assert [p.message for p in verdict.problems] == [
        f"status.json is the unredacted original of face.jpg (seq {verdict.files['face.jpg'].seq})"
        ": never publish it"
    ]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    return proc.pid


@pytest.mark.parametrize(
    ("owner", "says"),
    [
        ("old", "delete it once no Veil run is writing into this folder"),
        ("dead", "the next `veil redact` into this folder removes it, or delete it"),
    ],
)
def test_a_partial_is_named_as_one_with_its_fix(published: Path, owner: str, says: str) -> None:
    tag = "1a2b3c4d" if owner == "old" else f"{_dead_pid():08x}1a2b3c4d"
    name = f".face.veil-{tag}.partial.png"
    (published / name).write_bytes(np.random.default_rng(0).bytes(1000))
    verdict = _media_verdict(published)
    assert [p.message for p in verdict.problems] == [
        f"{name} is the hidden partial of an output a killed run left unfinished: {says}"
    ]


def test_a_partial_still_being_written_is_named_as_such(published: Path) -> None:
    name = f".face.veil-{os.getpid():08x}1a2b3c4d.partial.png"
    (published / name).write_bytes(b"")
    verdict = _media_verdict(published)
    assert [p.message for p in verdict.problems] == [
        f"{name} is an output still being written (process {os.getpid()}): verify it later"
    ]


def test_an_unredacted_original_in_the_published_folder_is_called_out(
    audited_run: AuditedRun, published: Path
) -> None:
    shutil.copy(audited_run.src / "face.png", published / "original.png")
    verdict = _media_verdict(published)
    assert not verdict.ok
    assert "original.png is the unredacted original of face.png" in verdict.problems[0].message
