"""A camera URL or pipeline as it may be shown: without its user, password or query. Every label,
log line, status field and error message of a network source goes through here."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit


def safe_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "url:(unparsable)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


_AUTHORIZATION = re.compile(r"^((?:proxy-)?authorization:[ \t]*\S+)[^\r\n]*", re.I | re.M)


def gst_label(pipeline: str) -> str:
    """A GStreamer pipeline as shown: its first element's name only (properties may hold
    addresses or credentials, e.g. an rtspsrc location)."""
    return "gst:" + pipeline.split("!", 1)[0].strip().split(" ", 1)[0]


def scrub(text: str, url: str) -> str:
    """`text` (e.g. an FFmpeg error or log line) with the URL, its user info and its query
    taken out, in their %-escaped and decoded spellings (FFmpeg decodes %XX before it uses or
    prints a user name or password), and any Authorization header's credentials (FFmpeg's
    trace log shows the RTSP requests it sends, Basic credentials and all)."""
    text = _AUTHORIZATION.sub(r"\1 ***", text)
    text = text.replace(url, safe_url(url))
    parts = urlsplit(url)
    for secret in (parts.password, parts.username, parts.query):
        if secret:
            text = text.replace(secret, "***")
            if unquote(secret) != secret:
                text = text.replace(unquote(secret), "***")
    return re.sub(r"//[^/@\s]*@", "//", text)
