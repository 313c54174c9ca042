"""Credentials as they may be shown: never. Every label, log line, status field, error message,
audit setting and report of a camera URL, a stream-out URL or any free-text setting goes through
here.

`safe_url` keeps what a reader needs to know which camera it is (scheme, host, port, path) and
says what was there without saying what it was: `rtsp://***@10.0.0.9/h264?***` had a user name
or password and a query. Path parameters named like a secret (`password=`, `token=`, ...) are
masked too: some cameras take their credentials in the path. `masked` applies that to any text
that may hold a URL (a GStreamer pipeline, a setting), and masks what looks like a credential
outside one.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MASK = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*")
_HOST = re.compile(r"[A-Za-z0-9._~%-]*|\[[0-9A-Fa-f:.]+\]")
# `name=value` where the name suggests a secret: `user=admin_password=x` in a camera's path,
# rtspsrc's `user-pw=x` in a pipeline, `?token=x` anywhere.
_SECRET_PARAM = re.compile(
    r"(?i)((?<![A-Za-z0-9])[\w.-]*(?:pass|pwd|pw|token|secret|key|auth|sig|cred|session|jwt|"
    r"user|login)[\w.-]*\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,!/?#\"']*)"
)
# user[:password]@ outside a URL (`admin:pw@10.0.0.9` without a scheme, or a path after an
# unencoded `/` in a password).
_USERINFO = re.compile(r"[^\s/@\"']+@")
# A query outside a URL (`webcam?user=x&p=y`): any of its names may carry a secret.
_QUERY = re.compile(r"(?<=[^\s?])\?[^\s\"'=&?]+=[^\s\"']*")


def safe_url(url: str) -> str:
    """`url` without its user name, password, query or fragment: each one present is `***`."""
    found = _SCHEME.match(url.strip())
    if found is None:
        return "url:(unparsable)"
    scheme = found.group()[:-3].lower()
    rest = url.strip()[found.end() :]
    # The authority ends where FFmpeg ends it: at the first /, ? or #.
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    host, port = _host_port(hostport)
    if host is None or "@" in tail:
        # An `@` past the authority: most likely a password with an unencoded `/`, `?` or `#`,
        # whose first part would otherwise show as a host or a port.
        return f"{scheme}://{MASK + '@' if at or '@' in tail else ''}(unparsable)"
    path, _, fragment = tail.partition("#")
    path, question, _ = path.partition("?")
    path = _SECRET_PARAM.sub(r"\1" + MASK, path)
    return (
        f"{scheme}://{MASK + '@' if at else ''}{host}{port}{path}"
        + ("?" + MASK if question else "")
        + ("#" + MASK if fragment else "")
    )


def _host_port(text: str) -> tuple[str | None, str]:
    host, colon, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not colon:
        host, port = text, ""
    elif port and (not port.isdigit() or int(port) > 65535):
        return None, ""
    if not _HOST.fullmatch(host):
        return None, ""
    return host.lower(), f":{int(port)}" if port else ""


def masked(text: str) -> str:
    """Free text that may hold a URL or a credential (a source spec, a pipeline, a setting) as
    it may be shown: every URL through `safe_url`; secret-named parameters, queries and `user@`
    masked.
    Text without any is returned as it is."""
    text = _URL_IN_TEXT.sub(lambda m: safe_url(m.group()), text)
    text = _QUERY.sub("?" + MASK, _SECRET_PARAM.sub(r"\1" + MASK, text))
    return _USERINFO.sub(lambda m: m.group() if _is_mask(m.group()) else MASK + "@", text)


def _is_mask(userinfo: str) -> bool:
    return userinfo.endswith(MASK + "@")


def has_credentials(text: str) -> bool:
    """Whether `text` holds something `masked` masks (a user, password, query or secret)."""
    return masked(text) != text


_AUTHORIZATION = re.compile(r"^((?:proxy-)?authorization:[ \t]*\S+)[^\r\n]*", re.I | re.M)


def gst_label(pipeline: str) -> str:
    """A GStreamer pipeline as shown: its first element's name only (properties may hold
    addresses or credentials, e.g. an rtspsrc location)."""
    return masked("gst:" + pipeline.split("!", 1)[0].strip().split(" ", 1)[0])


def scrub(text: str, url: str) -> str:
    """`text` (e.g. an FFmpeg error or log line) with the URL, its user info and its query
    taken out, in their %-escaped and decoded spellings (FFmpeg decodes %XX before it uses or
    prints a user name or password), and any Authorization header's credentials (FFmpeg's
    trace log shows the RTSP requests it sends, Basic credentials and all)."""
    text = _AUTHORIZATION.sub(r"\1 ***", text)
    text = text.replace(url, safe_url(url))
    for secret in _secrets_of(url):
        text = text.replace(secret, MASK)
        if unquote(secret) != secret:
            text = text.replace(unquote(secret), MASK)
    return masked(text)


def _secrets_of(url: str) -> list[str]:
    """The user info, query and fragment of `url`, and its user name and password apart: the
    pieces an error message may quote on their own. Longest first, so that a piece is masked
    whole before a part of it is."""
    try:
        parts = urlsplit(url)
        pieces = [parts.username, parts.password, parts.query, parts.fragment]
    except ValueError:
        pieces = []
    found = _SCHEME.match(url.strip())
    rest = url.strip()[found.end() :] if found else url
    userinfo, at, _ = rest.rpartition("@")
    if at:
        pieces += [userinfo, *userinfo.split(":", 1)]
    return sorted({p for p in pieces if p and p != MASK}, key=len, reverse=True)
