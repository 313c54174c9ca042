"""The parser every command's options go into. A bad argument is a UsageError: one line on
stderr, exit 2, like any other bad input."""

from __future__ import annotations

import argparse
from typing import NoReturn, TypeAlias

from edge.errors import UsageError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# What a command's `add_parser` adds its parser to. Its one-line summary is not given there: it
# is in `edge.cli.main.COMMANDS`, which `veil --help` reads without loading the command.
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
