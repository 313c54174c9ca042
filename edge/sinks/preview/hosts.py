"""Which names the preview answers to: the defence against DNS rebinding.

A web page can point its own name at 127.0.0.1 and then read, as its own origin, whatever
answers there: the picture and the status of a preview that needs no token. The browser still
names that page's site in the Host header, so a server bound to loopback answers only to
loopback names (`localhost`, or a loopback address such as 127.0.0.1 or [::1]), with any port
or none: an SSH tunnel's local port differs from the bound one. Bound to any other address the
token is always required, and it is the defence there: a rebound page is another origin to the
browser, which never sends it the cookie, and the page cannot know the token. So there any
well-formed Host is answered (the device's LAN address, its mDNS name, a name in /etc/hosts).

Everywhere, a request must name exactly one well-formed Host (RFC 9112 section 3.2).
"""

from __future__ import annotations

import ipaddress
import re

from edge.config import is_loopback

_HOST = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{1,5})?")


def host_name(value: str) -> str | None:
    """The name in a Host header (`name`, `name:port`, `[v6]` or `[v6]:port`), lowercased and
    without a trailing dot; None when the value is not one."""
    found = _HOST.fullmatch(value.strip(" \t").lower())
    if found is None:
        return None
    v6 = found.group("v6")
    if v6 is not None:
        try:
            return str(ipaddress.IPv6Address(v6))
        except ValueError:
            return None
    name = found.group("name")
    return name[:-1] if name.endswith(".") else name


def _loopback_name(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostCheck:
    """The Host rule for a server bound to `bind` (an IP address or `localhost`)."""

    def __init__(self, bind: str) -> None:
        self.loopback = is_loopback(bind)

    def refusal(self, values: list[str] | None) -> int | None:
        """None when a request's Host headers are fine; else the status to refuse it with:
        400 (none, several, or not a host) or 421 (a name this server does not answer to)."""
        if not values or len(values) != 1:
            return 400
        name = host_name(values[0])
        if name is None:
            return 400
        if self.loopback and not _loopback_name(name):
            return 421
        return None
