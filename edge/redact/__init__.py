"""Redaction stage: `Redactor`, and the registry of redaction methods."""

from edge.redact.methods import METHODS
from edge.redact.redactor import Redactor

__all__ = ["METHODS", "Redactor"]
