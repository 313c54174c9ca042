"""The live preview: a small web page, served from the device, that shows the redacted picture
and the run's status to whoever aims the camera, on a phone or a laptop.

It is closed by default: off unless `[preview] bind` (or `veil run --preview`) names an address,
and then every request needs the access token unless the address is loopback and the token was
turned off. It can only ever show frames the redaction stage made, scaled down, and it never
slows the recording: a viewer that cannot keep up skips frames.
"""

from edge.sinks.preview.access import TOKEN_NAME, Gate, load_or_create_token
from edge.sinks.preview.server import PreviewServer
from edge.sinks.preview.tls import TlsFiles, load_or_create_cert

__all__ = [
    "TOKEN_NAME",
    "Gate",
    "PreviewServer",
    "TlsFiles",
    "load_or_create_cert",
    "load_or_create_token",
]
