"""``python -m crypto``: keygen, encrypt, decrypt, inspect, fingerprint.

Behaves like age: streams stdin to stdout, one-line errors on stderr with a
non-zero exit, and a ``-o`` output that appears only once it is complete.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from crypto._files import atomic_output, write_new_private_file
from crypto.envelope import inspect, open_envelope, seal
from crypto.errors import CryptoError, KeyFileError
from crypto.keyfile import KeyBundle, decrypt_key_file, encrypt_key_file
from crypto.keys import KeyKind, format_public_key, parse_public_key

PROG = "python -m crypto"


class UsageError(Exception):
    """A problem with how the command was called, not with the data."""


def read_passphrase(path: str | None, *, confirm: bool) -> bytes:
    """The passphrase from a file (its first line) or typed at the terminal."""
    if path is not None:
        try:
            text = Path(path).read_bytes()
        except OSError as error:
            raise UsageError(f"cannot read passphrase file: {error.strerror}") from None
        passphrase = text.split(b"\n", 1)[0].rstrip(b"\r")
    else:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask for a passphrase; use --passphrase-file")
        passphrase = getpass.getpass("Passphrase: ").encode("utf-8")
        if confirm and getpass.getpass("Repeat passphrase: ").encode("utf-8") != passphrase:
            raise UsageError("the passphrases do not match")
    if not passphrase:
        raise UsageError("the passphrase is empty")
    return normalise_passphrase(passphrase)


def normalise_passphrase(passphrase: bytes) -> bytes:
    """SPEC.md §8.3: UTF-8 passphrases in Unicode NFC, so "é" typed either way matches."""
    try:
        text = passphrase.decode("utf-8")
    except UnicodeDecodeError:
        return passphrase  # not text: used as the bytes it is
    return unicodedata.normalize("NFC", text).encode("utf-8")


def _input(path: str | None) -> BinaryIO:
    if path is None or path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as error:
        raise UsageError(f"cannot open {path}: {error.strerror}") from None


def _with_output(path: str | None, body: Callable[[BinaryIO], object]) -> None:
    """Run ``body`` against ``-o`` (atomically) or stdout."""
    if path is None or path == "-":
        body(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path} is a directory")
    try:
        with atomic_output(target) as handle:
            body(handle)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None


def cmd_keygen(args: argparse.Namespace) -> None:
    """Write a new encrypted key file; print the public key last on stdout."""
    target = Path(args.output)
    if target.exists():
        raise UsageError(f"{args.output} exists; refusing to overwrite a key file")
    passphrase = read_passphrase(args.passphrase_file, confirm=True)
    bundle = KeyBundle.new_reviewer() if args.kind == "reviewer" else KeyBundle.new_organisation()
    try:
        write_new_private_file(target, encrypt_key_file(bundle, passphrase))
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: {error.strerror}") from None
    print(f"# key file: {args.output} (mode 0600, passphrase-protected)")
    print(f"# signing key: {bundle.signing.token}")
    print(f"# signing fingerprint: {bundle.signing.token.fingerprint}")
    if bundle.encryption is None:
        print(bundle.signing.token)
        return
    print(f"# encryption fingerprint: {bundle.encryption.token.fingerprint}")
    print(bundle.encryption.token)


def cmd_encrypt(args: argparse.Namespace) -> None:
    """Seal the input to every ``-r`` recipient."""
    recipients = [parse_public_key(r, KeyKind.ENCRYPTION).key for r in args.recipient]
    if len(set(recipients)) != len(recipients):
        raise UsageError("a recipient is given twice")
    if args.output is None and sys.stdout.isatty():
        raise UsageError("refusing to write an envelope to a terminal; use -o")
    src = _input(args.input)
    try:
        _with_output(args.output, lambda dst: seal(src, dst, recipients))
    finally:
        if src is not sys.stdin.buffer:
            src.close()


def cmd_decrypt(args: argparse.Namespace) -> None:
    """Open the input with the key file's encryption key."""
    try:
        key_data = Path(args.identity).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {args.identity}: {error.strerror}") from None
    bundle = decrypt_key_file(key_data, read_passphrase(args.passphrase_file, confirm=False))
    if bundle.encryption is None:
        raise KeyFileError("this key file holds no decryption key")
    identity = bundle.encryption
    src = _input(args.input)
    try:
        _with_output(args.output, lambda dst: open_envelope(src, dst, identity))
    finally:
        if src is not sys.stdin.buffer:
            src.close()


def cmd_inspect(args: argparse.Namespace) -> None:
    """Describe the header and sizes; no key, no secrets."""
    src = _input(args.input)
    try:
        info = inspect(src)
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    print("format: cso-envelope/v1")
    print(f"version: {info.version}")
    print(f"stanzas: {len(info.recipients)}")
    for recipient in info.recipients:
        print(f"  recipient: {format_public_key(KeyKind.ENCRYPTION, recipient)}")
    print(f"chunks: {info.chunk_count}")
    print(f"padded size: {info.padded_size}")
    print(f"envelope size: {info.envelope_size}")


def cmd_fingerprint(args: argparse.Namespace) -> None:
    """Print the grouped-digit fingerprint of a public key token."""
    print(parse_public_key(args.key).fingerprint)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per verb."""
    parser = argparse.ArgumentParser(prog=PROG, description="cso-envelope/v1 tool")
    verbs = parser.add_subparsers(dest="verb", required=True)

    keygen = verbs.add_parser("keygen", help="create a passphrase-protected key file")
    keygen.add_argument("-o", "--output", required=True, metavar="KEYFILE")
    keygen.add_argument("--passphrase-file", metavar="F")
    keygen.add_argument("--kind", choices=["reviewer", "organisation"], default="reviewer")
    keygen.set_defaults(run=cmd_keygen)

    encrypt = verbs.add_parser("encrypt", help="encrypt to one or more public keys")
    encrypt.add_argument("-r", "--recipient", action="append", required=True, metavar="PUBKEY")
    encrypt.add_argument("-o", "--output", metavar="OUT")
    encrypt.add_argument("input", nargs="?", metavar="IN")
    encrypt.set_defaults(run=cmd_encrypt)

    decrypt = verbs.add_parser("decrypt", help="decrypt with a key file")
    decrypt.add_argument("-i", "--identity", required=True, metavar="KEYFILE")
    decrypt.add_argument("--passphrase-file", metavar="F")
    decrypt.add_argument("-o", "--output", metavar="OUT")
    decrypt.add_argument("input", nargs="?", metavar="IN")
    decrypt.set_defaults(run=cmd_decrypt)

    inspect_ = verbs.add_parser("inspect", help="show the header, without secrets")
    inspect_.add_argument("input", nargs="?", metavar="IN")
    inspect_.set_defaults(run=cmd_inspect)

    fingerprint = verbs.add_parser("fingerprint", help="fingerprint of a public key")
    fingerprint.add_argument("key", metavar="PUBKEY")
    fingerprint.set_defaults(run=cmd_fingerprint)
    return parser


def _exit_on_signal(signum: int, _frame: object) -> None:
    """Turn SIGTERM/SIGHUP into an exception, so that outputs are cleaned up."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit status."""
    args = build_parser().parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    try:
        args.run(args)
    except CryptoError as error:
        print(f"{PROG}: error: {error.diagnostics()}", file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    return 0
