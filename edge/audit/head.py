"""A log's head, `SEQ:SHA256`: the sequence number of its last whole record and the SHA-256 of
that line. The chain makes the head stand for every record up to it, so a head kept where the
device cannot change it (printed, mailed, committed somewhere) later shows whether the log still
holds those records unchanged: `veil audit verify LOG --head SEQ:SHA256`.

No signature is added: the record at the head is already signed by the device key, and a head
that a log no longer holds is evidence whoever published it, as long as it came from a channel
the reader trusts.
"""

from __future__ import annotations

import re

from edge.audit.log import parse_record, read_tail
from edge.digest import sha256_bytes
from edge.errors import AuditError, UsageError

_HEAD = re.compile(r"(\d{1,12}):([0-9a-f]{64})")


def format_head(seq: int, sha256: str) -> str:
    return f"{seq}:{sha256}"


def parse_head(text: str) -> tuple[int, str]:
    found = _HEAD.fullmatch(text.strip().lower())
    if found is None:
        raise UsageError(f"--head {text[:80]!r}: expected SEQ:SHA256, as `veil audit head` prints")
    return int(found.group(1)), found.group(2)


def head_of(data: bytes) -> tuple[int, str]:
    """The head of a log's bytes; UsageError when it holds no whole record."""
    try:
        tail = read_tail(data, True)
    except AuditError as exc:
        raise UsageError(str(exc)) from None
    if tail.seq == 0:
        raise UsageError("the log holds no whole record yet: it has no head")
    return tail.seq - 1, tail.prev


def missing_head(data: bytes, head: tuple[int, str]) -> str | None:
    """Why the log no longer holds `head`, or None when it does."""
    seq, sha256 = head
    seen = False
    for line in data.split(b"\n"):
        obj = parse_record(line)
        if obj is None or obj["seq"] != seq:
            continue
        if sha256_bytes(line) == sha256:
            return None
        seen = True
    if seen:
        return (
            f"the record at seq {seq} is not the published head {sha256[:16]}…: the log was "
            "rewritten up to it"
        )
    return (
        f"the log does not reach the published head (seq {seq}): it was cut back after the "
        "head was published"
    )
