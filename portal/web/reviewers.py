"""The current reviewers, as the portal knows them: the signed key directory.

The portal serves ``DATA_DIR/key-directory.json`` to browsers unchanged, and
verifies it itself with the pinned organisation key, so that it can refuse
uploads not addressed to exactly the current reviewers. The file is re-read
when it changes (``portal reviewers add`` re-signs it in place).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crypto.directory import KeyDirectory, verify_directory
from crypto.errors import DirectoryError
from crypto.keys import KeyKind, PublicKeyToken, parse_public_key

ORGANISATION_KEY_FILE = "organisation.pub"


class NoDirectoryError(Exception):
    """The portal has no valid key directory, so it cannot accept reports."""


@dataclass(frozen=True)
class CurrentDirectory:
    """The directory bytes as served, and what they say once verified."""

    raw: bytes
    verified: KeyDirectory

    @property
    def recipients(self) -> frozenset[bytes]:
        """The raw reviewer keys every upload must be sealed to."""
        return frozenset(self.verified.recipient_keys)


def pinned_organisation_key(configured: PublicKeyToken | None, data_dir: Path) -> PublicKeyToken:
    """The organisation key from the settings, else from ``DATA_DIR/organisation.pub``."""
    if configured is not None:
        return configured
    path = data_dir / ORGANISATION_KEY_FILE
    try:
        return parse_public_key(path.read_text(encoding="ascii"), KeyKind.SIGNING)
    except FileNotFoundError:
        raise NoDirectoryError(
            f"no organisation key: set PORTAL_ORGANISATION_KEY or write {path}"
        ) from None


class DirectoryCache:
    """Loads and verifies the directory file, again whenever it changes."""

    def __init__(self, path: Path, organisation: PublicKeyToken) -> None:
        self.path = path
        self.organisation = organisation
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._current: CurrentDirectory | None = None

    def current(self, now: datetime | None = None) -> CurrentDirectory:
        """The verified directory; :class:`NoDirectoryError` if missing, bad or expired."""
        moment = now or datetime.now(UTC)
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise NoDirectoryError("the key directory has not been published yet") from None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            if stamp != self._stamp or self._current is None:
                raw = self.path.read_bytes()
                self._current = CurrentDirectory(raw, self._verify(raw, moment))
                self._stamp = stamp
            elif moment >= self._current.verified.expires_at:
                raise NoDirectoryError(
                    "the key directory has expired; the operator must re-sign it"
                )
            return self._current

    def _verify(self, raw: bytes, moment: datetime) -> KeyDirectory:
        try:
            return verify_directory(raw, self.organisation, moment)
        except DirectoryError as error:
            raise NoDirectoryError(
                f"the key directory is not valid: {error.diagnostics()}"
            ) from None
