"""The preview page (page.html, shipped in the package) and the Content-Security-Policy it is
served with.

The page is one self-contained file: no CDN, font or script from anywhere else, so it works on a
network with no way out and gives nothing away to a third party. Its one style and one script
are inline and allowed by their SHA-256 alone; the policy forbids every other source, so an
injected script, a form or a frame around the page would not run.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_INLINE = re.compile(rb"<(style|script)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class Page:
    body: bytes
    csp: str


def _hash(source: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source).digest()).decode("ascii") + "'"


def policy(html: bytes) -> str:
    """The CSP for `html`: its inline <style> and <script> blocks, by hash, and nothing else."""
    allowed: dict[bytes, list[str]] = {b"style": [], b"script": []}
    for tag, source in _INLINE.findall(html):
        allowed[tag].append(_hash(source))
    if not allowed[b"script"] or not allowed[b"style"]:
        raise ValueError("the preview page has lost its inline <style> or <script>")
    return "; ".join(
        [
            "default-src 'none'",
            "img-src 'self'",
            "connect-src 'self'",
            "style-src " + " ".join(allowed[b"style"]),
            "script-src " + " ".join(allowed[b"script"]),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@cache
def page() -> Page:
    html = resources.files("edge.sinks.preview").joinpath("page.html").read_bytes()
    return Page(html, policy(html))
