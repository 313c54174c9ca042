"""`veil`: a table from each command's name to the module that owns it (its options and its body),
loaded only when that command runs: `veil --help` and a light command load no detector, codec or
crypto they do not use. And the one place where an error becomes its line and its exit code.

Exit 0 on success, 1 on a runtime error, 2 on a usage or config error, each error one line on
stderr (a command may add its own: 3 when frames were fully obscured); 130 when interrupted; 141,
quietly, when the reader of the output has gone (`veil ... | head -1`), as the shell reports a
program that SIGPIPE ended.
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NamedTuple, Protocol, cast

from edge import __version__
from edge.cli.parser import Parser, Subparsers
from edge.errors import ConfigError, VeilError
from edge.names import shown


class Command(NamedTuple):
    module: str  # has add_parser(subparsers) and main(args) -> int
    summary: str  # what `veil --help` says of it


COMMANDS = {
    "redact": Command(
        "edge.cli.redact_cmd", "redact faces in a video, an image or a folder of them"
    ),
    "run": Command(
        "edge.cli.run_cmd", "the live camera loop: record only redacted video, until stopped"
    ),
    "preview": Command("edge.cli.preview_cmd", "the preview page's address and access token"),
    "doctor": Command(
        "edge.cli.doctor_cmd",
        "check this device (libraries, models, keys, disk, clock, sandbox)",
    ),
    "status": Command("edge.cli.status_cmd", "show a live run's status file"),
    "check-config": Command(
        "edge.cli.check_config_cmd", "validate a profile; every error with its line"
    ),
    "eval": Command(
        "edge.cli.eval_cmd",
        "measure recall and over-redaction on an annotated set (faceblur-eval/1)",
    ),
    "models": Command("edge.cli.models_cmd", "fetch or verify the pinned models"),
    "audit": Command("edge.cli.audit_cmd", "verify or show an audit log; export the device key"),
    "sample": Command("edge.cli.sample_cmd", "write a sample clip of real moving faces"),
    "bench": Command("edge.cli.bench_cmd", "measure decode, decode+encode and full-pipeline speed"),
}

SIGPIPE_EXIT = 128 + 13


class CommandModule(Protocol):
    def add_parser(self, subparsers: Subparsers) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def load(name: str) -> CommandModule:
    return cast(CommandModule, importlib.import_module(COMMANDS[name].module))


def build_parser(command: str | None = None) -> Parser:
    """`veil`'s parser with the options of `command` (its module loaded); every other command
    is only its name and summary, which is all `veil --help` shows and all argparse needs to
    tell which command was asked for."""
    parser = Parser(
        prog="veil", description="On-device face redaction. Identification is disabled by design."
    )
    parser.add_argument("--version", action="version", version=f"veil {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, entry in COMMANDS.items():
        if name == command:
            load(name).add_parser(sub)
        else:
            sub.add_parser(name, help=entry.summary, add_help=False)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    # Twice: first which command (`--help`, `--version` and a missing or unknown command are
    # answered there, with no command loaded), then with that command's options.
    command = build_parser().parse_known_args(argv)[0].command
    return build_parser(command).parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (systemd stop, kill) unwinds like Ctrl-C: partial outputs are removed on the way out.
    raise KeyboardInterrupt


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = parse_args(argv)
        return load(args.command).main(args)
    except VeilError as exc:
        text = str(exc)
        if isinstance(exc, ConfigError):
            # A config error may quote a value: a credential put in the wrong setting is masked.
            # Imported here: the capture package loads OpenCV and PyAV.
            from edge.capture.urls import masked

            text = masked(text)
        # A name in any message must not break or forge lines.
        print(f"veil: error: {shown(text)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("veil: interrupted; unfinished outputs were removed", file=sys.stderr)
        return 130


def _readers_gone() -> bool:
    """Whether the reader of stdout or stderr has gone (a pipe into `head` that has exited);
    if so, it goes to /dev/null, where the interpreter's last flush cannot fail again."""
    gone = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if any(events & select.POLLERR for _, events in poller.poll(0)):
            gone.append(fd)
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in gone:
            os.dup2(devnull, fd)
        os.close(devnull)
    return bool(gone)


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        try:
            return _run(argv)
        finally:
            # Now, not at exit: a reader that has gone is then still told apart here.
            if sys.stdout is not None:  # None when started with no stdout at all
                sys.stdout.flush()
    except BrokenPipeError:
        if not _readers_gone():
            raise  # a socket's or a child's pipe: a fault, not a reader that has had enough
        return SIGPIPE_EXIT
