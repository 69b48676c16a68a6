"""The organisation's key directories this workstation holds, and who may author team updates.

Every verified directory is kept, not only the newest (crypto/SPEC.md §17.8):
an update is judged against the directory its author named, so a teammate's
update made before a directory change is still accepted after it, while a
removed reviewer's client, which names the newest directory, is refused.
Directories are public (the portal serves them to every browser), so they are
stored as they came, unsealed, and verified again when read.

The newest directory also decides whom this workstation seals its own updates
to; it is the one with the greatest serial, so an old directory arriving late
never narrows the recipients (§10.4).
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime

from crypto.directory import KeyDirectory, read_directory
from crypto.errors import DirectoryError, KeyFormatError
from crypto.keys import KeyKind, PublicKeyToken, parse_public_key
from reviewer_tool.errors import ReviewerError
from reviewer_tool.team.wire import Update
from reviewer_tool.workspace import Workspace

_TABLE = """
CREATE TABLE IF NOT EXISTS key_directory (
    serial INTEGER PRIMARY KEY,
    document BLOB NOT NULL          -- the signed directory as received (public data)
)
"""
ORGANISATION_META = "organisation_key"
UNLISTED = "this workstation"
#: the verified directories of each open workspace, with the serials they were read for
_cache: weakref.WeakKeyDictionary[Workspace, tuple[tuple[str, tuple[int, ...]], list[KeyDirectory]]]
_cache = weakref.WeakKeyDictionary()


def _ensure(ws: Workspace) -> None:
    ws.db.execute(_TABLE)


def organisation_key(ws: Workspace) -> PublicKeyToken | None:
    """The pinned organisation key that signs key directories, or None."""
    value = ws.meta(ORGANISATION_META)
    return None if value is None else parse_public_key(value, KeyKind.SIGNING)


def pin_organisation(ws: Workspace, token: str, *, replace: bool = False) -> PublicKeyToken:
    """Pin the organisation's signing key; return it.

    A different key replaces the pinned one only with ``replace``, and then
    the directories held are forgotten: they were signed by the old key.
    """
    try:
        key = parse_public_key(token, KeyKind.SIGNING)
    except KeyFormatError as error:
        raise ReviewerError(f"organisation key: {error.diagnostics()}") from None
    pinned = organisation_key(ws)
    if pinned == key:
        return key
    if pinned is not None and not replace:
        raise ReviewerError(
            f"another organisation key is pinned (fingerprint {pinned.fingerprint});"
            " replacing it forgets the key directories held"
        )
    _ensure(ws)
    with ws.transaction():
        ws.db.execute("DELETE FROM key_directory")
        ws.set_meta(ORGANISATION_META, str(key))
    return key


def store_directory(ws: Workspace, data: bytes) -> KeyDirectory | None:
    """Verify a directory with the pinned organisation key and keep it; None if already held.

    Its clock is not checked: an expired directory still says who was a
    reviewer while it was current (§17.8). Raises :class:`ReviewerError`
    when no organisation key is pinned or the directory does not verify.
    """
    organisation = organisation_key(ws)
    if organisation is None:
        raise ReviewerError(
            "no organisation key is pinned: `reviewer trust-org csosig1…` (the operator has it)"
        )
    try:
        directory = read_directory(data, organisation)
    except DirectoryError as error:
        raise ReviewerError(f"key directory refused: {error.diagnostics()}") from None
    _ensure(ws)
    row = ws.db.execute(
        "SELECT document FROM key_directory WHERE serial = ?", (directory.serial,)
    ).fetchone()
    if row is not None:
        if read_directory(bytes(row[0]), organisation) != directory:
            # §17.8: the first one stays, so that no later copy can rewrite history
            raise ReviewerError(
                f"key directory {directory.serial} differs from the one already held; kept that one"
            )
        return None
    ws.db.execute(
        "INSERT INTO key_directory (serial, document) VALUES (?, ?)", (directory.serial, data)
    )
    return directory


def held(ws: Workspace) -> list[KeyDirectory]:
    """Every directory held, in ascending serial, verified against the pinned key."""
    organisation = organisation_key(ws)
    if organisation is None:
        return []
    _ensure(ws)
    serials = tuple(
        row[0] for row in ws.db.execute("SELECT serial FROM key_directory ORDER BY serial")
    )
    key = (str(organisation), serials)
    cached = _cache.get(ws)
    if cached is not None and cached[0] == key:
        return list(cached[1])
    directories = []
    for (document,) in ws.db.execute("SELECT document FROM key_directory ORDER BY serial"):
        try:
            directories.append(read_directory(bytes(document), organisation))
        except DirectoryError:
            raise ReviewerError("the workspace's key directories are damaged") from None
    _cache[ws] = (key, directories)
    return list(directories)


def newest(ws: Workspace) -> KeyDirectory | None:
    """The held directory with the greatest serial, or None."""
    directories = held(ws)
    return directories[-1] if directories else None


def expired(directory: KeyDirectory, now: datetime | None = None) -> bool:
    """Whether ``directory`` is past its expiry (§10.2) at ``now``."""
    return (now or datetime.now(UTC)) >= directory.expires_at


def _signing_key(entry: object) -> str | None:
    token = getattr(entry, "signing_key", None)
    return None if token is None else str(token)


def my_label(ws: Workspace) -> str:
    """This workstation's label in the newest directory, else "this workstation"."""
    directory = newest(ws)
    for entry in directory.reviewers if directory else ():
        if entry.encryption_key == ws.identity.token:
            return entry.label
    return UNLISTED


def label_of(ws: Workspace, signing_token: str) -> str | None:
    """The label a signing key has in the newest directory listing it, or None."""
    for directory in reversed(held(ws)):
        for entry in directory.reviewers:
            if _signing_key(entry) == signing_token:
                return entry.label
    return None


def listed(directory: KeyDirectory, signing_token: str) -> bool:
    """Whether ``directory`` lists ``signing_token`` as a reviewer's signing key."""
    return any(_signing_key(entry) == signing_token for entry in directory.reviewers)


def admission(ws: Workspace, update: Update) -> tuple[str, str]:
    """Whether an update whose signature verified is accepted, pending or refused (§17.9).

    Judged against D, the held directory with the greatest serial not above
    the update's ``directory_serial`` (the oldest held if none is): accepted
    if D lists the author's signing key, refused if not; pending while no
    held directory is as new as the one it names, or none is held at all.
    """
    if update.author == str(ws.keys.signing.token):
        return "accepted", "made on this workstation"
    directories = held(ws)
    if not directories:
        return "pending", "no key directory is held yet"
    if update.directory_serial > directories[-1].serial:
        return "pending", f"it names key directory {update.directory_serial}, not held yet"
    judge = directories[0]
    for directory in directories:
        if directory.serial <= update.directory_serial:
            judge = directory
    if listed(judge, update.author):
        return "accepted", f"its author is listed in key directory {judge.serial}"
    return "refused", f"its author is not listed in key directory {judge.serial}"
