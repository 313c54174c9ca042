"""Who may see the preview: the access token, and the gate every request passes first.

The token is 32 random bytes made on first use and kept beside the device key, readable by its
owner alone. A viewer shows it once (`?token=` in the link `veil preview url` prints); the page
then lives on an HttpOnly cookie, scripts and recorders send `Authorization: Bearer`. The token
never appears in a message, a log line or the status.

Wrong tokens are limited per client address, but not to stop guessing: 256 random bits cannot
be guessed at any rate. The limit tells a client that keeps presenting wrong tokens (a stale
bookmark, a misconfigured script, a flood) to back off, and counts it. So it counts every token
a request presents, and a request that presents more than MAX_CANDIDATES is refused unread; and
it never locks anyone out: a request with the right token is served whatever the same address
sent before, so another user behind the same address (an SSH tunnel) cannot shut the owner out.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.errors import AuditError
from edge.private_files import read_private, write_private

TOKEN_NAME = "preview-token"
COOKIE = "veil_preview"
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{32,256}")
FAILURES = 10  # wrong tokens an address may present in WINDOW_S before it is answered 429
WINDOW_S = 60.0
MAX_CANDIDATES = 4  # tokens one request may present: a cookie, a bearer, a query, a stale cookie
MAX_TRACKED = 1024  # addresses remembered for the limit; the oldest is forgotten first


def load_or_create_token(folder: Path) -> tuple[str, bool]:
    """The preview's access token in `folder`, made there first if it has none.
    Returns (token, created)."""
    path = folder / TOKEN_NAME
    created = False
    if not path.exists():
        created = write_private(path, (secrets.token_urlsafe(32) + "\n").encode(), "preview token")
    text = read_private(path, "preview token").decode("ascii", errors="replace").strip()
    if not _WELL_FORMED.fullmatch(text):
        raise AuditError(f"{path} is not a preview token; delete it and a new one is made")
    return text, created


class Headers(Protocol):
    """What the gate reads of a request's headers (an http.client.HTTPMessage)."""

    def get_all(self, name: str) -> list[str] | None: ...


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: 200 (go on), 400 (more tokens than one request may carry), 401 (no
    valid token) or 429 (no valid token, and too many wrong ones lately).
    via_query: a token came in the address, so the page redirects to drop it from there."""

    status: int
    via_query: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200


def _cookies(headers: Headers) -> Iterator[str]:
    for line in headers.get_all("Cookie") or []:
        for pair in line.split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep and name == COOKIE:
                yield value.strip().strip('"')


def _bearers(headers: Headers) -> Iterator[str]:
    for line in headers.get_all("Authorization") or []:
        scheme, _, value = line.strip().partition(" ")
        if scheme.lower() == "bearer":
            yield value.strip()


def _matches(candidate: str, token: bytes) -> bool:
    """Constant-time, so the time a wrong guess takes says nothing about the right one."""
    try:
        sent = candidate.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(sent, token)


class Gate:
    """Decides every request before anything else is read. token None: none is required (the
    caller allows that on a loopback address only). Thread-safe: one gate serves all clients."""

    def __init__(self, token: str | None, *, tls: bool) -> None:
        self._token = token.encode("ascii") if token is not None else None
        self._tls = tls
        self._lock = threading.Lock()
        # Address -> times of its recent wrong tokens. Addresses that only ever presented the
        # right token, or none, are never kept.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0  # 401s and 429s
        self.limited = 0  # 429s

    def allowed(
        self,
        headers: Headers,
        query: dict[str, list[str]],
        client_ip: str,
        now: float | None = None,
    ) -> Verdict:
        token = self._token
        if token is None:
            return Verdict(200)
        now = time.monotonic() if now is None else now
        in_query = query.get("token", [])
        sent = [*_cookies(headers), *_bearers(headers), *in_query]
        if len(sent) > MAX_CANDIDATES:
            with self._lock:  # unread, but every one of them counts
                self.refused += 1
                self._record_failures(client_ip, now, len(sent))
            return Verdict(400)
        # Every candidate is compared (each in constant time) before the verdict, and the right
        # one wins whatever this address sent before: the limit never locks the token out.
        right = [_matches(candidate, token) for candidate in sent]
        if any(right):
            return Verdict(200, via_query=bool(in_query))
        with self._lock:
            self.refused += 1
            limited = self._is_limited(client_ip, now)
            if sent:  # a wrong token counts; a request with none presents nothing to count
                self._record_failures(client_ip, now, len(sent))
            if limited:
                self.limited += 1
                return Verdict(429)
        return Verdict(401)

    def set_cookie(self) -> str:
        """The Set-Cookie value that carries the token from here on (never in the address).

        SameSite=Lax, not Strict: a token link opened from a chat or a mail page is a cross-site
        navigation, and the redirect that follows it would arrive without a Strict cookie (401).
        Lax still keeps the cookie off every cross-site subresource (no other site can embed
        the picture or read the status), and the server has nothing a request could change."""
        if self._token is None:
            raise ValueError("no token is required, so there is no cookie to set")
        value = f"{COOKIE}={self._token.decode('ascii')}; HttpOnly; SameSite=Lax; Path=/"
        return value + "; Secure" if self._tls else value

    def _recent(self, client_ip: str, now: float) -> deque[float] | None:
        times = self._failures.get(client_ip)
        if times is None:
            return None
        while times and now - times[0] >= WINDOW_S:
            times.popleft()
        if not times:
            del self._failures[client_ip]
            return None
        return times

    def _is_limited(self, client_ip: str, now: float) -> bool:
        times = self._recent(client_ip, now)
        return times is not None and len(times) >= FAILURES

    def _record_failures(self, client_ip: str, now: float, count: int) -> None:
        times = self._recent(client_ip, now)
        if times is None:
            while len(self._failures) >= MAX_TRACKED:
                self._failures.popitem(last=False)
            times = self._failures[client_ip] = deque(maxlen=FAILURES)
        times.extend([now] * min(count, FAILURES))
        self._failures.move_to_end(client_ip)
