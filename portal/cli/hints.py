"""The hints ``portal`` prints: commands to type as printed, from any directory.

Programs are named so that they run in a shell that has not activated the
virtualenv, and every path is quoted for the shell.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from shlex import quote

from crypto.errors import CryptoError
from crypto.keyfile import read_public_tokens


def command(name: str) -> str:
    """How to type ``name`` (or this Python, for "python") so that it runs as printed.

    The bare name when the shell finds this installation's own; otherwise its
    path (``make run`` serves from .venv/, which is not on the PATH), quoted
    for the shell (a virtualenv may sit in a folder with a space in its name).
    """
    own = Path(sys.executable).parent / name
    if name == "python":
        return "python" if shutil.which("python") == sys.executable else quote(sys.executable)
    return name if shutil.which(name) == str(own) else quote(str(own))


#: the source checkout this module runs from, if it does (an installed wheel has none)
CHECKOUT = Path(__file__).resolve().parents[2]


def sample_sender(checkout: Path = CHECKOUT) -> Path | None:
    """scripts/demo.py of the source checkout; None when installed (no .git beside it)."""
    script = checkout / "scripts" / "demo.py"
    return script if (checkout / ".git").exists() and script.is_file() else None


def demo_hints(data_dir: Path, url: str, checkout: Path = CHECKOUT) -> list[str]:
    """A demo report's round trip, each step a command to type as printed.

    Paths are absolute and programs named so that they run from any
    directory in a shell that has not activated the virtualenv. ``ID`` and
    ``RECEIPT`` stand for what an earlier step printed. The sample sender is
    offered only from a source checkout; otherwise the browser does its part.
    """
    demo = data_dir / "demo"
    data, blobs = quote(str(data_dir)), quote(str(data_dir / "blobs"))
    python, portal, reviewer = command("python"), command("portal"), command("reviewer")
    passphrase = quote(str(demo / "passphrase"))
    key = quote(str(demo / "reviewer-1.key"))
    inbox, replies = quote(str(demo / "inbox.bundle")), quote(str(demo / "replies.bundle"))
    ws = f"--workspace {quote(str(demo / 'workspace'))} --passphrase-file {passphrase}"
    portal_key = (data_dir / "portal-signing.pub").read_text().strip()
    organisation = data_dir / "organisation.pub"
    org_key = organisation.read_text().strip() if organisation.exists() else None
    script = sample_sender(checkout)
    send = f"{python} {quote(str(script))}" if script else None
    enrol = _demo_enrolment(demo)
    lines = [
        "Demo mode: a report's round trip, each command to be typed as printed",
        f" 1. open {url}/ in a browser, send a report and keep the receipt it shows",
        *([f"    (or send a sample one: {send} send {url}/)"] if send else []),
        " 2. read what was stored, as reviewer-1 (NAME: a file in the listing):",
        f"    ls {blobs}",
        f"    {python} -m crypto decrypt -i {key} --passphrase-file {passphrase} {blobs}/NAME",
        " 3. export the inbox, as the operator:",
        f"    {portal} --data-dir {data} export --out {inbox}",
        " 4. make reviewer-1's workspace (once), pinning the portal's bundle key:",
        f"    {reviewer} init --key {key} --portal-key {portal_key} {ws}",
        # the organisation's key checks the key directory that team updates are sealed to
        *([f"    {reviewer} trust-org {org_key} {ws}"] if org_key else []),
        " 5. import the inbox and list the reports:",
        f"    {reviewer} import {inbox} {ws}",
        f"    {reviewer} list {ws}",
        " 6. read one and answer it (ID: from the list; triage, redact, forward take the same"
        " options):",
        f"    {reviewer} show ID {ws}",
        f"    {reviewer} reply ID --message 'Thank you. Which berth were you at?' {ws}",
        f"    (or do all of it in a browser, the desk: {reviewer} desk --no-open {ws})",
        " 7. carry the replies back; the first time, enrol reviewer-1 so that the portal"
        " trusts its signature:",
        f"    {reviewer} export-replies --out {replies} --force {ws}",
        *([f"    {portal} --data-dir {data} {enrol}"] if enrol else []),
        f"    {portal} --data-dir {data} import-replies {replies}",
        f" 8. the reporter reads the reply at {url}/followup with the receipt",
        *([f"    (or: {send} followup {url}/ RECEIPT)"] if send else []),
    ]
    if not send:
        lines.append(
            "note: without a browser at hand, any text browser works (the pages need no"
            " JavaScript); a source checkout also has scripts/demo.py to send a sample report"
        )
    if not enrol:
        lines.append(
            f"note: this demo has no sync key for reviewer-1 yet; run `{portal} --data-dir {data}"
            " init --demo` once more (it keeps everything else) to see how to enrol reviewer-1"
        )
    return lines


def _demo_enrolment(demo: Path) -> str | None:
    """``accounts add`` for reviewer-1 with its demo keys; None if the demo has no sync key.

    The public keys are read as the key files list them, without the passphrase.
    """
    try:
        sync_key = read_public_tokens((demo / "reviewer-1-sync.key").read_bytes())["signing"]
        signing_key = read_public_tokens((demo / "reviewer-1.key").read_bytes())["signing"]
    except (OSError, KeyError, CryptoError):
        return None
    return f"accounts add reviewer-1 --sync-key {sync_key} --signing-key {signing_key}"
