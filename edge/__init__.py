"""Veil: on-device face redaction. Every frame that leaves the pipeline has been redacted."""

from edge.telemetry import switch_off

# Here, before any module of Veil's can import onnxruntime: it reads its switch at import.
switch_off()

__version__ = "0.1.0"
