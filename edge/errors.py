"""One error hierarchy for Veil; each branch states its policy.

VeilError                 exit 1 unless a subclass says otherwise
├── UsageError            exit 2: bad arguments or paths; nothing was started
│   └── ConfigError       exit 2: a config file that does not validate
├── ModelError            exit 1: a model is missing or fails its pinned SHA-256; never loaded
├── MediaError            exit 1: an input that cannot be decoded; that input yields no output
├── OutputError           exit 1: an output that cannot be written; partial files are removed
├── AuditError            exit 1: the audit log or device key cannot be used; nothing is
│                         processed without a log (fail closed)
└── DetectorError         never reaches the user: the frame it concerns is fully obscured
                          (fail closed) and counted
"""

from __future__ import annotations


class VeilError(Exception):
    """Base of every error Veil raises on purpose."""

    exit_code = 1


class UsageError(VeilError):
    """The command line or a path given on it is wrong."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or value does not validate."""


class ModelError(VeilError):
    """A model file is missing, or its SHA-256 is not the pinned one."""


class MediaError(VeilError):
    """An input file cannot be read as the media it claims to be."""


class OutputError(VeilError):
    """An output cannot be written."""


class AuditError(VeilError):
    """The audit log cannot be opened or written, or the device key cannot be used."""


class DetectorError(VeilError):
    """A detector failed on one frame. The pipeline obscures that frame whole."""
