"""The audit log's record types: a closed allow-list of fields, each of a plain type.

Every record is one line of canonical JSON (sorted keys, no spaces, ASCII) with an envelope:
`v` format version, `seq` (0, 1, 2 … across the whole log), `utc` wall time, `mono` monotonic
seconds, `prev` the SHA-256 of the previous line (64 zeros for the first), `run` the run it
belongs to, `type`, and `sig`, an Ed25519 signature of the line without `sig`.

Nothing here can hold a picture, a face box, landmarks or an embedding: fields are counts,
timings, hashes, names and settings, and no field is a list of numbers. A test walks every field
of every type against that allow-list; `extra="forbid"` makes the verifier refuse anything else.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

FORMAT = 1
GENESIS = "0" * 64

Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Hex16 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
Utc = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")]
Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$")]
PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}=$")]
# A file name relative to the log's folder (POSIX separators).
# No control characters: a name is shown in terminals and joined onto paths.
FileName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,1024}$")]
# "detector: RuntimeError", "overload", "stale": a stage and an exception class, never a message.
Cause = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z-]*(: [A-Za-z_][A-Za-z0-9_.]*)?$")]
ErrorName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", max_length=80)]
SettingKey = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.]*$", max_length=80)]
SettingValue = Annotated[str, StringConstraints(max_length=200)] | int | float | bool
Version = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+-]{1,40}$")]
Count = Annotated[int, Field(ge=0)]
SourceKind = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{1,20}$")]
Reason = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z-]{0,40}$")]
Status = Literal["ok", "fail-closed", "error", "interrupted"]
# The counts a `summary` holds since the previous one, and a `run_stop` in total.
# `not_taken`: source frames a live run let pass unsearched and unrecorded to keep up (an even
# decimation it chose and logged in a `schedule` record), apart from the frames lost.
COUNTS = ("frames_in", "frames_out", "dropped", "obscured", "faces", "not_taken")
Millis = Annotated[float, Field(ge=0.0)]
# The onnxruntime execution providers a run may name (the config's allow-list).
ProviderName = Literal["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Literal[1]
    seq: Count
    utc: Utc
    mono: float
    prev: Hex64
    run: Hex32
    sig: Signature


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,40}$")]
    sha256: Hex64


class RunStart(_Record):
    """A run begins. Names the key that signs the run's records, and says what it found at the
    end of the log: a torn record (a power cut mid-write) or a run that never wrote its stop."""

    type: Literal["run_start"]
    veil_version: Version
    device: Hex32
    key_id: Hex16
    pubkey: PublicKey
    source: Literal["files", "camera"]
    # The live source's kind ("file", "v4l2", "rtsp", "http", "gst", "picamera2"): never its
    # URL, which may hold credentials.
    source_kind: SourceKind | None = None
    config_sha256: Hex64
    settings: dict[SettingKey, SettingValue]
    models: tuple[ModelRef, ...]
    torn_bytes: Count
    torn_sha256: Hex64 | None
    unclosed_run: Hex32 | None


class DetectorReady(_Record):
    """A detector was built: what CenterFace actually runs on, and the providers the config
    asked for that it does not (a fallback, e.g. no CUDA). `provider` is None for a detector
    without CenterFace. Written once per detector, after the run_start."""

    type: Literal["detector_ready"]
    detector: Annotated[str, StringConstraints(pattern=r"^[a-z0-9+-]{1,80}$")]
    provider: ProviderName | None
    fallback: tuple[ProviderName, ...]


class Summary(_Record):
    """Counts since the previous summary of the run (so a run's summaries add up to its stop)."""

    type: Literal["summary"]
    frames_in: Count
    frames_out: Count
    dropped: Count
    obscured: Count
    faces: Count
    not_taken: Count = 0
    detect_ms_p50: Millis | None
    detect_ms_p99: Millis | None
    fail_closed: dict[Cause, Count]  # frames dropped or fully obscured, by cause
    # Live runs: capture to sink, of the frames recorded since the previous summary.
    latency_ms_p50: Millis | None = None
    latency_ms_p99: Millis | None = None


class FileClosed(_Record):
    """An output file (or, live, a segment) is complete: what anyone can check it against."""

    type: Literal["file_closed"]
    name: FileName
    kind: Literal["video", "image"]
    size: Count
    sha256: Hex64
    frames: Count
    first_ts: float | None
    last_ts: float | None
    source_sha256: Hex64 | None
    c2pa: bool  # a C2PA manifest signed by the run's key is inside the file
    # A segment a killed run left unfinished, cut back to its last whole fragment by this run.
    recovered: bool = False


class FileDiscarded(_Record):
    """An output was abandoned unfinished; nothing was left under its name."""

    type: Literal["file_discarded"]
    name: FileName
    frames: Count
    # "partial": an unfinished segment of a killed run with no whole fragment, removed.
    reason: Literal["error", "interrupted", "partial"]
    error: ErrorName | None


class FileDeleted(_Record):
    """A logged file was deleted on purpose (retention)."""

    type: Literal["file_deleted"]
    name: FileName
    sha256: Hex64
    reason: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z-]{0,40}$")]


class SourceLost(_Record):
    """A live source stopped delivering (unplugged, connection dropped, read error)."""

    type: Literal["source_lost"]
    source_kind: SourceKind
    reason: Reason


class SourceRestored(_Record):
    """A lost live source delivers again, after `offline_s` and `attempts` reopening tries."""

    type: Literal["source_restored"]
    source_kind: SourceKind
    offline_s: Annotated[float, Field(ge=0.0)]
    attempts: Count


class Storage(_Record):
    """Recording stopped because the disk is full (`full`), or started again (`resumed`)."""

    type: Literal["storage"]
    event: Literal["full", "resumed"]
    free_bytes: Count


Output = Literal["preview", "stream"]


class OutputStart(_Record):
    """Redacted frames begin to leave by a way other than the recording: the preview page or
    the stream out. Where to only as a class of address (`loopback`, `network`, `stdout`):
    never an address, a port, a URL or a client."""

    type: Literal["output_start"]
    output: Output
    bound: Literal["loopback", "network", "stdout"]
    protocol: Literal["http", "https", "rtsp", "rtsps", "mpegts", "mjpeg"]
    token: bool  # every request needs the access token (preview)


class OutputLost(_Record):
    """A stream receiver went away or stalled; frames for it are dropped, the recording goes on."""

    type: Literal["output_lost"]
    output: Output
    reason: Reason


class OutputRestored(_Record):
    type: Literal["output_restored"]
    output: Output
    offline_s: Annotated[float, Field(ge=0.0)]
    attempts: Count


class OutputStop(_Record):
    """The output closed: frames it sent, frames it dropped for a slow or absent receiver,
    connections it refused (no valid token, rate-limited, too many) and reconnections."""

    type: Literal["output_stop"]
    output: Output
    frames: Count
    dropped: Count
    refused: Count
    reconnects: Count


class RunStop(_Record):
    type: Literal["run_stop"]
    status: Status
    frames_in: Count
    frames_out: Count
    dropped: Count
    obscured: Count
    faces: Count
    not_taken: Count = 0
    files: Count
    error: ErrorName | None


class ScheduleChosen(_Record):
    """What a run chose to keep up (`edge.run.pace`), when it starts and whenever it changes:
    the frames it takes a second of the source's, the sweep, and the costs it chose them by.
    `reason`: "calibrated" (at start), "losing-frames" (it lost more than it may, and slowed),
    "cannot-keep-up" (even at `min_fps` it loses more than 2 % of the frames it takes)."""

    type: Literal["schedule"]
    fps: Millis  # frames taken per second
    source_fps: Millis
    sweep: Count
    whole_every: Count
    order: Literal["sweep", "changed"]
    reason: Literal["calibrated", "losing-frames", "cannot-keep-up"]
    keeps_up: bool
    whole_ms: Millis | None = None  # one whole-frame pass, measured
    fine_ms: Millis | None = None  # all fine passes of one sweep together, measured


Record = (
    RunStart
    | DetectorReady
    | Summary
    | FileClosed
    | FileDiscarded
    | FileDeleted
    | SourceLost
    | SourceRestored
    | Storage
    | OutputStart
    | OutputLost
    | OutputRestored
    | OutputStop
    | ScheduleChosen
    | RunStop
)
RECORD_TYPES: dict[str, type[_Record]] = {
    "run_start": RunStart,
    "detector_ready": DetectorReady,
    "summary": Summary,
    "file_closed": FileClosed,
    "file_discarded": FileDiscarded,
    "file_deleted": FileDeleted,
    "source_lost": SourceLost,
    "source_restored": SourceRestored,
    "storage": Storage,
    "output_start": OutputStart,
    "output_lost": OutputLost,
    "output_restored": OutputRestored,
    "output_stop": OutputStop,
    "schedule": ScheduleChosen,
    "run_stop": RunStop,
}


def canonical(obj: dict[str, Any]) -> bytes:
    """The one byte form of a record: any other spelling of the same JSON is an edit."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def signed_part(obj: dict[str, Any]) -> bytes:
    return canonical({k: v for k, v in obj.items() if k != "sig"})
