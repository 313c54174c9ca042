"""Audit stage, beside the flow: a tamper-evident log of what was processed and how.

`keys` holds the device key, `records` the closed set of record types, `log` the append-only
writer, `trail` what a run logs, `verify` the checker, `report` its human summaries. Nothing here
ever receives a frame, a crop or a box: only counts, timings, hashes, names and settings.
"""

from edge.audit.keys import DeviceKey, load_or_create
from edge.audit.log import AuditLog
from edge.audit.trail import AuditTrail
from edge.audit.verify import Verdict, verify_log

DEFAULT_LOG_NAME = "veil-audit.jsonl"

__all__ = [
    "DEFAULT_LOG_NAME",
    "AuditLog",
    "AuditTrail",
    "DeviceKey",
    "Verdict",
    "load_or_create",
    "verify_log",
]
