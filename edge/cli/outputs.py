"""`veil run`'s side outputs, the preview page and the stream out: checked with the rest of the
command line (exit 2), opened before the camera, logged when they start and stop, and closed
before the run's stop record."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import ValidationError

from edge.audit import AuditTrail
from edge.audit.records import Output
from edge.capture.urls import masked
from edge.config import (
    Config,
    StreamOutConfig,
    first_problem,
    is_loopback,
    parse_bind,
)
from edge.errors import UsageError
from edge.run import StatusBoard
from edge.sinks.base import Tap

if TYPE_CHECKING:  # imported where used: a run without them never loads a server or a muxer
    from edge.sinks.preview import PreviewServer
    from edge.sinks.stream import StreamOut


@dataclass(frozen=True)
class OutputPlan:
    preview: tuple[str, int] | None  # host, port
    stream: StreamOutConfig | None


def plan_outputs(cfg: Config, preview: str | None, stream_out: str | None) -> OutputPlan:
    """The outputs the profile and the command line ask for, or a one-line UsageError."""
    bind = preview if preview is not None else cfg.preview.bind
    where: tuple[str, int] | None = None
    if bind:
        try:
            where = parse_bind(bind)
        except ValueError as exc:
            raise UsageError(f"--preview {masked(str(exc))}") from None
        if not cfg.preview.require_token and not is_loopback(where[0]):
            raise UsageError(
                f"the preview on {where[0]} would be open to the network without a token: "
                "bind it to 127.0.0.1, or set [preview] require_token = true"
            )
    url = stream_out if stream_out is not None else cfg.stream_out.url
    stream: StreamOutConfig | None = None
    if url == "-" and sys.stdout.isatty():
        raise UsageError("--stream-out - writes video to standard output: pipe it somewhere")
    if url:
        try:
            stream = StreamOutConfig.model_validate({**cfg.stream_out.model_dump(), "url": url})
        except ValidationError as exc:
            # Never the URL itself: it may hold a password.
            why = first_problem(exc, StreamOutConfig).partition(": ")[2]
            raise UsageError(f"--stream-out: {why}") from None
    return OutputPlan(where, stream)


class _Events:
    """A side output's losses and returns, to the audit log (the output prints its own line)."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    def output_lost(self, output: str, reason: str) -> None:
        self.trail.output_lost(_output(output), reason)

    def output_restored(self, output: str, offline_s: float, attempts: int) -> None:
        self.trail.output_restored(_output(output), offline_s, attempts)


def _output(name: str) -> Output:
    return "preview" if name == "preview" else "stream"


def _address_class(host: str | None) -> str:
    if host is None:
        return "network"
    try:
        return "loopback" if is_loopback(host) else "network"
    except ValueError:  # a name: only `localhost` is known to stay on the device
        return "network"


@contextmanager
def open_outputs(
    plan: OutputPlan,
    cfg: Config,
    key_folder: Path,
    trail: AuditTrail,
    board: StatusBoard,
    rate: Fraction,
) -> Iterator[list[Tap]]:
    """Start the planned outputs and yield them as taps; on the way out close each and log its
    stop, whatever ended the run."""
    taps: list[Tap] = []
    with ExitStack() as stack:
        if plan.preview is not None:
            server = _start_preview(plan.preview, cfg, key_folder, trail, board)
            stack.callback(_stop, "preview", server, trail, board)
            board.outputs["preview"] = server.stats
            taps.append(server)
        if plan.stream is not None:
            from edge.sinks.stream import StreamOut

            stream = StreamOut(plan.stream.url, plan.stream, rate, _Events(trail))
            stdout = plan.stream.url == "-"
            url = urlsplit(plan.stream.url)
            stream.start()
            stack.callback(_stop, "stream", stream, trail, board)
            trail.output_start(
                "stream",
                "stdout" if stdout else _address_class(url.hostname),
                plan.stream.stdout_format if stdout else url.scheme,
            )
            board.outputs["stream"] = stream.stats
            taps.append(stream)
            where = "standard output" if stdout else "the configured RTSP server"
            print(f"veil: streaming the redacted video to {where}", file=sys.stderr)
        yield taps


def _start_preview(
    where: tuple[str, int], cfg: Config, key_folder: Path, trail: AuditTrail, board: StatusBoard
) -> PreviewServer:
    from edge.sinks.preview import PreviewServer, load_or_create_cert, load_or_create_token

    host, port = where
    token = load_or_create_token(key_folder)[0] if cfg.preview.require_token else None
    tls = load_or_create_cert(key_folder) if cfg.preview.tls else None
    server = PreviewServer(cfg.preview, host, port, token=token, tls=tls, status=lambda: board.body)
    try:
        server.start()
    except OSError as exc:
        raise UsageError(
            f"cannot serve the preview on {host}:{port}: {exc.strerror or exc}"
        ) from None
    bound_host, bound_port = server.address
    scheme = "https" if tls else "http"
    trail.output_start("preview", _address_class(host), scheme, token=token is not None)
    hint = " (`veil preview url` prints it with the access token)" if token else ""
    print(
        f"veil: preview on {scheme}://{url_host(bound_host)}:{bound_port}/{hint}", file=sys.stderr
    )
    return server


def _stop(
    output: Output, tap: PreviewServer | StreamOut, trail: AuditTrail, board: StatusBoard
) -> None:
    """Close an output and log what it did: frames served (preview) or sent (stream), and
    whichever of dropped, refused and reconnects it counts (the others are 0)."""
    tap.close()
    stats = tap.stats()
    board.outputs.pop(output, None)
    trail.output_stop(
        output,
        frames=stats.get("served", stats.get("sent", 0)),
        dropped=stats.get("dropped", 0),
        refused=stats.get("refused", 0),
        reconnects=stats.get("reconnects", 0),
    )


def url_host(host: str) -> str:
    """`host` as a URL shows it: a name of the device for every interface, IPv6 in brackets."""
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
        v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        return host
    if unspecified:  # 0.0.0.0 or ::, every interface: the device's own name reaches one of them
        return socket.gethostname()
    return f"[{host}]" if v6 else host
