"""Veil: on-device face redaction. Every frame that leaves the pipeline has been redacted."""

__version__ = "0.1.0"
