"""Where a key is in a TOML file, so that a config error names its line (`tomllib` keeps no
positions). Handles what profiles use: `[table]` headers, `key = value` and dotted keys."""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\s\"-]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\s\"-]+?)\s*=")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip().strip('"') for p in dotted.split("."))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Every table and key path in `text`, with its 1-based line number (first occurrence)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if (header := _HEADER.match(line)) is not None:
            table = _parts(header.group(1))
            lines.setdefault(table, number)
        elif (key := _KEY.match(line)) is not None:
            lines.setdefault(table + _parts(key.group(1)), number)
    return lines


def line_of(lines: dict[tuple[str, ...], int], loc: tuple[str | int, ...]) -> int | None:
    """The line of `loc`, or of the nearest table that holds it."""
    path = tuple(str(p) for p in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
