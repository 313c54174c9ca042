"""A camera URL as it may be shown: without its user, password or query. Every label, log line,
status field and error message of a network source goes through here."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def safe_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "url:(unparsable)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


def scrub(text: str, url: str) -> str:
    """`text` (e.g. an FFmpeg error) with the URL, its user info and its query taken out."""
    safe = safe_url(url)
    text = text.replace(url, safe)
    parts = urlsplit(url)
    for secret in (parts.password, parts.username, parts.query):
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"//[^/@\s]*@", "//", text)
