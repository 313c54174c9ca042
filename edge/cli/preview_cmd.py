"""`veil preview url` prints the preview page's address with its access token (made on first use),
and with TLS the certificate's fingerprint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.audit.keys import default_key_dir
from edge.cli.outputs import plan_outputs, url_host
from edge.cli.parser import Subparsers
from edge.config import DEFAULT_PREVIEW_PORT, load_config


def add_parser(subparsers: Subparsers) -> None:
    preview = subparsers.add_parser("preview")
    preview_sub = preview.add_subparsers(dest="preview_command", required=True)
    url = preview_sub.add_parser(
        "url", help="print the preview's URL with its access token (made on first use)"
    )
    url.add_argument("--config", type=Path, help="the profile `veil run` uses")
    url.add_argument("--preview", metavar="HOST:PORT", help="as for `veil run --preview`")
    url.add_argument("--key-dir", type=Path, help="the device key's folder (as for run)")


def main(args: argparse.Namespace) -> int:
    return preview_url_command(args.config, args.preview, args.key_dir)


def preview_url_command(config: Path | None, preview: str | None, key_dir: Path | None) -> int:
    from edge.sinks.preview import load_or_create_cert, load_or_create_token

    cfg = load_config(config)
    bind = preview or cfg.preview.bind or f"127.0.0.1:{DEFAULT_PREVIEW_PORT}"
    plan = plan_outputs(cfg, bind, "")
    assert plan.preview is not None
    host, port = plan.preview
    folder = key_dir or default_key_dir()
    scheme = "https" if cfg.preview.tls else "http"
    url = f"{scheme}://{url_host(host)}:{port}/"
    if cfg.preview.require_token:
        token, created = load_or_create_token(folder)
        if created:
            print(f"veil: made the preview's access token in {folder}", file=sys.stderr)
        url += f"?token={token}"
    print(url)
    if cfg.preview.tls:
        print(f"certificate SHA-256 fingerprint: {load_or_create_cert(folder).fingerprint}")
    if cfg.preview.require_token:
        print(
            "veil: anyone with this URL can watch the redacted picture; keep it like a password",
            file=sys.stderr,
        )
    return 0
