"""``reviewer sync keygen|pull|push``: the online transfer machine's side of the sync API.

This is the only module of the reviewer tool that opens network connections,
and it holds no key that can decrypt anything: only a *sync key* that logs in
(an Ed25519 challenge, portal/web/sync.py). Bundles are carried from here to the
air-gapped workstation and back on removable media. To reach an onion
service, run it under ``torsocks``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from crypto.errors import CryptoError
from crypto.keyfile import KeyBundle, decrypt_key_file, encrypt_key_file
from reviewer_tool.errors import ReviewerError
from reviewer_tool.session import read_passphrase
from reviewer_tool.terminal import say

LOGIN_CONTEXT = b"cso-portal sync login v1\n"
PREFIX = "/reviewer-sync/v1"
TIMEOUT = 120  # seconds; satellite links are slow
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def cmd_keygen(args: argparse.Namespace) -> None:
    """Make a sync login key file, passphrase-protected."""
    bundle = KeyBundle.new_sync()
    data = encrypt_key_file(bundle, read_passphrase(args, confirm=True))
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ReviewerError(f"{args.out} exists; choose another name") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    say(f"sync key: {bundle.signing.token}")
    say(f"  fingerprint {bundle.signing.token.fingerprint}")
    say("give the operator this key and `reviewer pubkey`'s signing key to enrol you")


def _request(
    url: str, *, data: bytes | None = None, token: str | None = None, content: str = ""
) -> Any:
    headers = {"Content-Type": content} if content else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - http(s) only, checked
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read()).get("error", "")
        except ValueError:
            detail = ""
        raise ReviewerError(f"the portal refused: {error.code} {detail}".rstrip()) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ReviewerError(f"cannot reach the portal: {reason}") from None


def _post_json(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    with _request(
        url, data=json.dumps(body).encode(), token=token, content="application/json"
    ) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def _base(portal: str) -> str:
    """The API base; plain HTTP only where the channel authenticates itself."""
    url = urllib.parse.urlsplit(portal)
    host = url.hostname or ""
    # A man in the middle could relay a login challenge for us to sign; HTTPS
    # and onion services authenticate the portal, loopback is this machine.
    if url.scheme == "https" or (
        url.scheme == "http" and (host.endswith(".onion") or host in _LOOPBACK)
    ):
        return portal.rstrip("/") + PREFIX
    raise ReviewerError("--portal must be an https:// URL, or http:// to a .onion or loopback")


def login(portal: str, account: str, key_file: Path, passphrase: bytes) -> str:
    """Log in with the sync key; return the session's bearer token."""
    try:
        keys = decrypt_key_file(key_file.read_bytes(), passphrase)
    except CryptoError as error:
        raise ReviewerError(f"{key_file}: {error.diagnostics()}") from None
    if keys.kind != "sync":
        raise ReviewerError(f"{key_file} is not a sync key (make one with `reviewer sync keygen`)")
    base = _base(portal)
    challenge = _post_json(f"{base}/login/challenge", {"account": account})["challenge"]
    message = LOGIN_CONTEXT + account.encode() + b"\n" + bytes.fromhex(challenge)
    signature = base64.urlsafe_b64encode(keys.signing.sign(message)).decode().rstrip("=")
    answer = _post_json(
        f"{base}/login", {"account": account, "challenge": challenge, "signature": signature}
    )
    return str(answer["token"])


def cmd_pull(args: argparse.Namespace) -> None:
    """Fetch an inbox bundle into --out (verified later, offline, by `reviewer import`)."""
    token = login(args.portal, args.account, args.sync_key, read_passphrase(args))
    query = {
        name: int(value)
        for name, value in (("since", args.since), ("team_since", args.team_since))
        if value is not None
    }
    url = f"{_base(args.portal)}/inbox"
    if query:
        url += "?" + "&".join(f"{name}={value}" for name, value in query.items())
    out: Path = args.out
    temp = out.with_name(f".{out.name}.partial")
    try:
        with _request(url, token=token) as response, temp.open("wb") as handle:
            while chunk := response.read(1024 * 1024):
                handle.write(chunk)
            first, last = response.headers["X-Cursor-From"], response.headers["X-Cursor-To"]
            team = (
                response.headers.get("X-Team-Cursor-From"),
                response.headers.get("X-Team-Cursor-To"),
            )
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    teamwork = f", team updates {team[0]} to {team[1]}" if None not in team else ""
    say(
        f"{out}: inbox from cursor {first} to {last}{teamwork}; carry it to the offline workstation"
    )


def cmd_push(args: argparse.Namespace) -> None:
    """Upload a replies bundle (which also acknowledges the inbox it names)."""
    token = login(args.portal, args.account, args.sync_key, read_passphrase(args))
    data = Path(args.file).read_bytes()
    with _request(
        f"{_base(args.portal)}/replies",
        data=data,
        token=token,
        content="application/octet-stream",
    ) as response:
        answer = json.loads(response.read())
    say(
        f"delivered: {answer['imported']} new reply(ies), {answer['already']} already there;"
        f" inbox acknowledged up to {answer['acknowledged_cursor']}"
        + (
            f"; {answer['team_imported']} new team update(s), {answer['team_already']}"
            " already there"
            if "team_imported" in answer
            else ""
        )
    )
