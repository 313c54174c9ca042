"""`veil audit verify|show|pubkey`. verify and show exit 0 only when the whole log holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.audit import load_or_create, verify_log
from edge.audit.head import format_head, head_of, missing_head, parse_head
from edge.audit.keys import default_key_dir, load_public
from edge.audit.summary import render_summary, render_tables
from edge.audit.verdict import Problem
from edge.cli.parser import Parser, Subparsers
from edge.errors import OutputError, UsageError


def add_parser(subparsers: Subparsers) -> None:
    audit = subparsers.add_parser("audit")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=Parser)
    verify = audit_sub.add_parser(
        "verify", help="check the log's chain, signatures and sequence; with --media, its files"
    )
    verify.add_argument("log", type=Path, help="the audit log (veil-audit.jsonl)")
    verify.add_argument(
        "--pubkey",
        type=Path,
        action="append",
        help="the device's public key (PEM from `veil audit pubkey`); repeat for several "
        "devices. Without it, records are only checked against the keys the log names itself",
    )
    verify.add_argument(
        "--media",
        type=Path,
        help="folder of outputs: every logged file in it must match its hash, and no other "
        "file may be there (but the log and a `veil run` status file)",
    )
    verify.add_argument(
        "--head",
        metavar="SEQ:SHA256",
        help="a head published earlier (`veil audit head`): the log must still hold it",
    )
    head = audit_sub.add_parser(
        "head", help="print the log's head (SEQ:SHA256), to publish where the device cannot edit"
    )
    head.add_argument("log", type=Path)
    show = audit_sub.add_parser("show", help="the log's runs and files as tables, then verify")
    show.add_argument("log", type=Path)
    show.add_argument("--pubkey", type=Path, action="append", help="as for verify")
    pubkey = audit_sub.add_parser(
        "pubkey", help="print the device's public key (PEM), making the key pair if needed"
    )
    pubkey.add_argument("--key-dir", type=Path, help="the device key's folder")
    pubkey.add_argument("-o", "--output", type=Path, help="write the PEM here, not to stdout")


def main(args: argparse.Namespace) -> int:
    if args.audit_command == "pubkey":
        return _pubkey(args.key_dir, args.output)
    if args.audit_command == "head":
        return _head(args.log)
    keys = _keys(args.pubkey)
    published = parse_head(args.head) if getattr(args, "head", None) else None
    verdict = verify_log(args.log, keys, getattr(args, "media", None))
    if published is not None and (why := missing_head(args.log.read_bytes(), published)):
        verdict.problems.append(Problem(why))
    if args.audit_command == "show":
        print(render_tables(verdict))
    print(render_summary(verdict))
    return 0 if verdict.ok else 1


def _head(log: Path) -> int:
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"audit log not found: {log}") from None
    except OSError as exc:
        raise UsageError(f"cannot read audit log {log}: {exc.strerror or exc}") from None
    print(format_head(*head_of(data)))
    print(
        "veil: keep this head where the device cannot change it; `veil audit verify LOG --head "
        "HEAD` then shows whether the log still holds every record up to it",
        file=sys.stderr,
    )
    return 0


def _keys(paths: list[Path] | None) -> list[Ed25519PublicKey] | None:
    return None if not paths else [load_public(p) for p in paths]


def _pubkey(key_dir: Path | None, output: Path | None) -> int:
    folder = key_dir or default_key_dir()
    key, created = load_or_create(folder)
    if created:
        print(f"veil: made the device key in {folder}", file=sys.stderr)
    pem = key.public_pem()
    if output is None:
        sys.stdout.write(pem.decode("ascii"))
    else:
        try:
            output.write_bytes(pem)
        except OSError as exc:
            raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None
    print(f"key id {key.key_id}, device {key.device_id}", file=sys.stderr)
    return 0
