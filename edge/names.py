"""File names as Veil prints and accepts them.

A name comes from whoever made the file. Printed raw, a newline in it would forge a line of a
report and an escape sequence would rewrite the terminal; so every name Veil prints goes through
`shown`. And a name the audit log cannot hold is refused before any work (`name_problem`), so that
no output is ever published under a name its record cannot carry.

An output is written under a hidden temporary name first (`edge.sinks.atomic`); such a name
(`is_partial`) is never an input, and says which process writes it (`partial_owner`).
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import PurePath

NAME_MAX = 255  # bytes in one file name (Linux, macOS); longer ones fail with ENAMETOOLONG
PARTIAL_MARK = ".veil-"  # in a temporary name: `.NAME.veil-PPPPPPPPRRRRRRRR.partial.EXT`
_OWNER = re.compile(r"\.veil-(?P<pid>[0-9a-f]{8})[0-9a-f]{8}\.partial")


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as Python keeps it (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return repr(char)[1:-1]  # \n, \x1b, \u202e, \udc00, ...


def shown(text: object) -> str:
    """`text` safe to print on one line: every character a terminal would act on or hide (control
    and format characters, undecodable bytes) as its escape, e.g. `evil\\nx.mp4`."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else _escape(c) for c in s)


def name_problem(path: PurePath) -> str | None:
    """Why Veil refuses to read or write a file by this name, in words, or None."""
    text = str(path)
    categories = {unicodedata.category(c) for c in text}
    if "Cs" in categories:
        return f"'{shown(text)}': the name is not valid UTF-8"
    if "Cc" in categories:
        return f"'{shown(text)}': the name holds a control character"
    for part in path.parts:  # the folders' names too: one too long fails any use of the path
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            return f"'{shown(part)}': the name is {size} bytes, over the {NAME_MAX} a name may have"
    return None


def is_partial(path: PurePath) -> bool:
    """A hidden, unfinished output, e.g. of a run killed by a power cut: never an input."""
    return path.name.startswith(".") and PARTIAL_MARK in path.name and ".partial" in path.name


def partial_owner(path: PurePath) -> int | None:
    """The process id that writes (or wrote) a partial, or None for a name that does not say
    (one of an older Veil)."""
    match = _OWNER.search(path.name) if is_partial(path) else None
    return int(match["pid"], 16) if match else None
