"""The reviewer's workspace: a directory whose every secret is encrypted at rest.

Layout::

    WORKSPACE/key.json        the reviewer key file (argon2id + SecretBox, crypto/SPEC.md §8.3)
    WORKSPACE/workspace.db    SQLite; every value that says anything about a report is a
                              SecretBox under the workspace key

The workspace key is derived from the reviewer's X25519 private key (HKDF,
``cso-reviewer workspace v1``), so the passphrase that opens the key file is
the only thing that opens the workspace, and no plaintext file ever exists:
reports, attachments, triage notes and replies are sealed before SQLite sees
them. What stays in the clear is structural: submission ids (random), bundle
ids and cursors, and which report a follow-up message belongs to (a random id
too, which the portal and the inbox bundle's entries hold in the clear as
well). SQLite runs with ``secure_delete`` so that replaced rows do not linger
in free pages.

A reporter's follow-up messages (reviewer_tool/followups.py) live in tables
of their own, beside the reports: every command that works on a report
(triage, redact, forward) therefore never meets one by accident, and a
follow-up whose report is not in this workspace can still be stored. The
tables are created when a workspace is opened, so an older version 1
workspace gains them without a migration.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import CryptoError
from crypto.keyfile import KeyBundle, decrypt_key_file, encrypt_key_file
from crypto.keys import EncryptionKeyPair, KeyKind, PublicKeyToken, parse_public_key
from reviewer_tool.errors import ReviewerError

KEY_FILE = "key.json"
DATABASE = "workspace.db"
FORMAT = "cso-reviewer-workspace/v1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS item (
    id TEXT PRIMARY KEY,            -- the portal's random submission id
    summary BLOB NOT NULL,          -- sealed JSON: status, category, dates, grade
    record BLOB NOT NULL            -- sealed JSON: the report, triage, redactions, replies
);
CREATE TABLE IF NOT EXISTS attachment (
    item_id TEXT NOT NULL REFERENCES item(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    data BLOB NOT NULL,             -- sealed bytes, as the reporter sent them
    PRIMARY KEY (item_id, position)
);
CREATE TABLE IF NOT EXISTS bundle (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, cursor_from INTEGER, cursor_to INTEGER,
    complete INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outgoing (
    reply_id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    sealed BLOB NOT NULL,           -- sealed JSON: the reply as written
    envelope BLOB NOT NULL,         -- sealed again: the message sealed to the reporter
    exported_in TEXT
);
CREATE TABLE IF NOT EXISTS followup (
    id TEXT PRIMARY KEY,            -- the portal's random id of the follow-up submission
    thread_id TEXT NOT NULL,        -- the report it follows, which may not be in this workspace
    summary BLOB NOT NULL,          -- sealed JSON: day received, attachments, read or not
    record BLOB NOT NULL            -- sealed JSON: the message document, when it was imported
);
CREATE INDEX IF NOT EXISTS followup_thread ON followup (thread_id);
CREATE TABLE IF NOT EXISTS followup_attachment (
    followup_id TEXT NOT NULL REFERENCES followup(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    data BLOB NOT NULL,             -- sealed bytes, as the reporter sent them
    PRIMARY KEY (followup_id, position)
);
"""
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Item:
    """One report in the queue: its summary and its full record, decrypted."""

    id: str
    summary: dict[str, Any]
    record: dict[str, Any]


@dataclass(frozen=True)
class Followup:
    """A reporter's later message in the conversation of report ``thread``, decrypted."""

    id: str
    thread: str
    summary: dict[str, Any]
    record: dict[str, Any]


def workspace_key(identity: EncryptionKeyPair) -> bytes:
    """The SecretBox key for everything in the workspace database."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"cso-reviewer workspace v1"
    ).derive(identity.private)


class Workspace:
    """An unlocked workspace: the reviewer's keys and the sealed database."""

    def __init__(self, root: Path, keys: KeyBundle) -> None:
        if keys.encryption is None:
            raise ReviewerError("the workspace key file is not a reviewer key")
        self.root = root
        root.chmod(0o700)
        self.keys = keys
        self.identity: EncryptionKeyPair = keys.encryption
        #: also keys the HMAC that names forwarded incidents (reviewer_tool/forwarding.py)
        self.seal_key = workspace_key(keys.encryption)
        self._box = nacl.secret.SecretBox(self.seal_key)
        database = root / DATABASE
        database.touch(mode=0o600)
        database.chmod(0o600)
        self.db = sqlite3.connect(database, isolation_level=None)
        self.db.execute("PRAGMA secure_delete = ON")
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA journal_mode = DELETE")
        self.db.executescript(_SCHEMA)

    # --- creation and opening -------------------------------------------------

    @classmethod
    def create(cls, root: Path, keys: KeyBundle, passphrase: bytes) -> Workspace:
        """Make a new workspace around ``keys``; refuse to overwrite one."""
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (root / KEY_FILE).exists():
            raise ReviewerError(f"{root} already holds a workspace")
        fd = os.open(root / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(encrypt_key_file(keys, passphrase))
        workspace = cls(root, keys)
        workspace.set_meta("format", FORMAT)
        return workspace

    @classmethod
    def open(cls, root: Path, passphrase: bytes) -> Workspace:
        """Unlock the workspace at ``root`` with the passphrase of its key file."""
        try:
            data = (root / KEY_FILE).read_bytes()
        except FileNotFoundError:
            raise ReviewerError(
                f"no workspace at {root}: run `reviewer keygen` or `reviewer init --key FILE`"
            ) from None
        try:
            keys = decrypt_key_file(data, passphrase)
        except CryptoError as error:
            raise ReviewerError(error.diagnostics()) from None
        workspace = cls(root, keys)
        if workspace.meta("format") != FORMAT:
            raise ReviewerError(f"{root / DATABASE} is not a version 1 workspace")
        return workspace

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # --- sealing --------------------------------------------------------------

    def seal(self, data: bytes) -> bytes:
        """Encrypt bytes for the database."""
        return bytes(self._box.encrypt(data))

    def unseal(self, data: bytes) -> bytes:
        """Decrypt bytes from the database."""
        try:
            return bytes(self._box.decrypt(data))
        except nacl.exceptions.CryptoError:
            raise ReviewerError("the workspace database is damaged") from None

    def seal_json(self, value: Any) -> bytes:
        """Encrypt a JSON value for the database."""
        return self.seal(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    def unseal_json(self, data: bytes) -> Any:
        """Decrypt a JSON value from the database."""
        return json.loads(self.unseal(data))

    # --- settings ---------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        """A workspace setting (not secret: format, pinned keys, cursors)."""
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        """Store a workspace setting."""
        self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def portal_key(self) -> PublicKeyToken:
        """The pinned key that signs the portal's inbox bundles."""
        value = self.meta("portal_key")
        if value is None:
            raise ReviewerError(
                "no portal key is pinned: `reviewer trust-portal csosig1…` "
                "(the portal prints it at `portal init`)"
            )
        return parse_public_key(value, KeyKind.SIGNING)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change to the workspace."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- items ------------------------------------------------------------------

    def imported_ranges(self) -> list[list[int]]:
        """The inbox cursor ranges fully imported, merged (what a replies bundle acknowledges)."""
        ranges: list[list[int]] = []
        for start, end in self.db.execute(
            "SELECT cursor_from, cursor_to FROM bundle WHERE complete = 1 AND kind = 'inbox' "
            "AND cursor_from IS NOT NULL ORDER BY cursor_from, cursor_to"
        ):
            if ranges and start <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], end)
            elif end > start:
                ranges.append([start, end])
        return ranges

    def item_ids(self) -> set[str]:
        """The ids of every report already in the workspace."""
        return {row[0] for row in self.db.execute("SELECT id FROM item")}

    def put_item(self, item: Item) -> None:
        """Insert or update an item (inside a transaction); its attachments stay."""
        # Not INSERT OR REPLACE: that deletes the row first, and the cascade
        # would take the item's attachments with it.
        self.db.execute(
            "INSERT INTO item (id, summary, record) VALUES (?, ?, ?) ON CONFLICT (id) "
            "DO UPDATE SET summary = excluded.summary, record = excluded.record",
            (item.id, self.seal_json(item.summary), self.seal_json(item.record)),
        )

    def submission_ids(self) -> set[str]:
        """The ids of every report and follow-up message already in the workspace."""
        return self.item_ids() | {row[0] for row in self.db.execute("SELECT id FROM followup")}

    def _by_prefix(self, table: str, prefix: str) -> list[tuple[Any, ...]]:
        """At most two rows of ``table`` (item or followup) whose id starts with ``prefix``."""
        columns = {"item": "id, summary, record", "followup": "id, thread_id, summary, record"}
        return self.db.execute(
            f"SELECT {columns[table]} FROM {table} WHERE id >= ? AND id < ? LIMIT 2",  # noqa: S608 - fixed names
            (prefix, prefix + "g"),
        ).fetchall()

    def item(self, item_id: str) -> Item:
        """The report ``item_id`` (a unique prefix of at least 6 characters also works)."""
        _check_prefix(item_id)
        rows = self._by_prefix("item", item_id)
        if not rows:
            followups = self._by_prefix("followup", item_id)
            if len(followups) == 1:
                raise ReviewerError(
                    f"{item_id} is a follow-up message to report {followups[0][1][:12]}, "
                    "not a report; give the report's id"
                )
            raise ReviewerError(f"no report {item_id} in this workspace")
        if len(rows) > 1:
            raise ReviewerError(f"{item_id} matches more than one report; give more of the id")
        return self._item(rows[0])

    def _item(self, row: tuple[Any, ...]) -> Item:
        return Item(row[0], self.unseal_json(row[1]), self.unseal_json(row[2]))

    def report(self, item_id: str) -> Item | None:
        """The report whose id is exactly ``item_id``, or None when it is not here."""
        row = self.db.execute(
            "SELECT id, summary, record FROM item WHERE id = ?", (item_id,)
        ).fetchone()
        return None if row is None else self._item(row)

    def find(self, submission_id: str) -> Item | Followup:
        """The report or follow-up message ``submission_id`` (or a unique prefix of it)."""
        _check_prefix(submission_id, "a report or follow-up id")
        items = self._by_prefix("item", submission_id)
        followups = self._by_prefix("followup", submission_id)
        if not items and not followups:
            raise ReviewerError(f"no report or follow-up message {submission_id} in this workspace")
        if len(items) + len(followups) > 1:
            raise ReviewerError(f"{submission_id} matches more than one message; give more of it")
        return self._item(items[0]) if items else self._followup(followups[0])

    def summaries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every item's id and decrypted summary."""
        for item_id, summary in self.db.execute("SELECT id, summary FROM item ORDER BY id"):
            yield item_id, self.unseal_json(summary)

    def attachment(self, item_id: str, position: int) -> bytes:
        """An attachment's bytes as the reporter sent them."""
        row = self.db.execute(
            "SELECT data FROM attachment WHERE item_id = ? AND position = ?", (item_id, position)
        ).fetchone()
        if row is None:
            raise ReviewerError("that attachment is not in the workspace")
        return self.unseal(row[0])

    # --- follow-up messages -----------------------------------------------------

    def _followup(self, row: tuple[Any, ...]) -> Followup:
        return Followup(row[0], row[1], self.unseal_json(row[2]), self.unseal_json(row[3]))

    def followups(self, thread: str | None = None) -> list[Followup]:
        """Every follow-up message (or those of report ``thread``), in the order imported."""
        query = "SELECT id, thread_id, summary, record FROM followup"
        if thread is None:
            rows = self.db.execute(f"{query} ORDER BY rowid")
        else:
            rows = self.db.execute(f"{query} WHERE thread_id = ? ORDER BY rowid", (thread,))
        return [self._followup(row) for row in rows]

    def followup_summaries(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every follow-up message's id, report id and decrypted summary (not its text)."""
        for followup_id, thread, summary in self.db.execute(
            "SELECT id, thread_id, summary FROM followup ORDER BY rowid"
        ):
            yield followup_id, thread, self.unseal_json(summary)

    def mark_read(self, followups: list[Followup]) -> None:
        """Record that the reviewer has been shown these follow-up messages."""
        unread = [f for f in followups if not f.summary.get("read")]
        if not unread:
            return
        with self.transaction():
            self.db.executemany(
                "UPDATE followup SET summary = ? WHERE id = ?",
                [(self.seal_json({**f.summary, "read": True}), f.id) for f in unread],
            )

    def followup_attachment(self, followup_id: str, position: int) -> bytes:
        """An attachment of a follow-up message, as the reporter sent it."""
        row = self.db.execute(
            "SELECT data FROM followup_attachment WHERE followup_id = ? AND position = ?",
            (followup_id, position),
        ).fetchone()
        if row is None:
            raise ReviewerError("that attachment is not in the workspace")
        return self.unseal(row[0])


def _check_prefix(submission_id: str, what: str = "a report id") -> None:
    """Refuse anything but a plausible id prefix before it reaches a query."""
    if len(submission_id) < 6 or not set(submission_id) <= _HEX:
        raise ReviewerError(f"give {what} (at least its first 6 hex characters)")
